"""The pieces every training loop shares, against values worked out by hand: the warm-up + cosine schedule, one
AdamW step (decoupled weight decay), learning-rate scales, the shuffled batches, the finite-loss check.
(`backward_and_step` in every precision: test_precision.py.)"""

import math

import pytest
import torch

from rlhf_course.engine import training


@pytest.mark.parametrize("step, expected", [
    (0, 0.1),  # warm-up: max_lr · (step + 1) / warmup = 1 · 1/10; never 0 at the first step
    (4, 0.5),  # 5/10
    (9, 1.0),  # the last warm-up step reaches max_lr
    (10, 1.0),  # decay starts: progress (10 − 10)/100 = 0, cos 0 = 1 → 0.1 + 0.9 · 1
    (35, 0.1 + 0.9 * 0.5 * (1 + math.sqrt(0.5))),  # progress 25/100, cos(π/4) = √½ → 0.868198
    (60, 0.55),  # progress ½, cos(π/2) = 0 → 0.1 + 0.9 · ½
    (110, 0.1),  # progress 1, cos π = −1 → min_ratio · max_lr
    (500, 0.1),  # past the end it stays at the floor
])
def test_cosine_lr_warms_up_then_decays_to_the_floor(step, expected):
    # total 110, warm-up 10 (so the decay spans exactly 100 steps), max_lr 1, floor 0.1
    assert training.cosine_lr(step, 110, 10, 1.0, 0.1) == pytest.approx(expected, abs=1e-12)


def test_cosine_lr_uses_its_floor_scale_and_works_without_warm_up():
    # floor 0 and max_lr 2: halfway (progress ½) is 2 · ½ · (1 + 0) = 1; the end is 0
    assert training.cosine_lr(60, 110, 10, 2.0, 0.0) == pytest.approx(1.0)
    assert training.cosine_lr(110, 110, 10, 2.0, 0.0) == pytest.approx(0.0)
    # floor ½: halfway is ½ + ½ · ½ = 0.75
    assert training.cosine_lr(60, 110, 10, 1.0, 0.5) == pytest.approx(0.75)
    # no warm-up: step 0 is max_lr (progress 0), step 50 of 100 is halfway
    assert training.cosine_lr(0, 100, 0, 3.0, 0.1) == pytest.approx(3.0)
    assert training.cosine_lr(50, 100, 0, 3.0, 0.1) == pytest.approx(3.0 * 0.55)


def test_one_adamw_step_by_hand():
    """AdamW's first step: m̂ = g, v̂ = g², so the update is lr · g/(|g| + eps) = lr · sign(g), and the weight decay
    is decoupled, p ← p·(1 − lr·wd) − lr·sign(g).  p = 1, g = 0.5, lr = 0.1, wd = 0.1: 1·0.99 − 0.1 = 0.89;
    p = −2, g = −3: −2·0.99 + 0.1 = −1.88. A frozen parameter is not given to the optimiser at all."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    frozen = torch.nn.Parameter(torch.tensor([5.0]), requires_grad=False)
    optimizer = training.make_optimizer([p, frozen], lr=0.1, weight_decay=0.1)
    assert [len(g["params"]) for g in optimizer.param_groups] == [1]
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    p.grad = torch.tensor([0.5, -3.0])
    optimizer.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.89, -1.88]))
    assert frozen.item() == 5.0


def test_set_lr_keeps_each_groups_scale():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr_scale": 0.25}], lr=1.0)
    training.set_lr(optimizer, 0.4)
    assert [g["lr"] for g in optimizer.param_groups] == [0.4, pytest.approx(0.1)]


def test_shuffled_batches_give_every_item_once_per_epoch():
    # 7 items in batches of 3 for 7 steps = 21 indices = exactly 3 epochs; batches run across an epoch's end
    batches = list(training.shuffled_batches(7, 3, 7, seed=1))
    assert [len(b) for b in batches] == [3] * 7
    stream = [i for b in batches for i in b]
    for epoch in range(3):
        assert sorted(stream[7 * epoch: 7 * epoch + 7]) == list(range(7))
    assert stream[:7] != stream[7:14], "each epoch is shuffled afresh"
    assert batches == list(training.shuffled_batches(7, 3, 7, seed=1))
    assert batches != list(training.shuffled_batches(7, 3, 7, seed=2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_loss_stops_with_the_step(bad):
    training.check_finite(torch.tensor(2.5), "the loss", 3)
    with pytest.raises(training.NonFiniteLossError, match=f"the loss became {bad} at step 7"):
        training.check_finite(torch.tensor(bad), "the loss", 7)
