"""What PPO and GRPO share (`engine/rl.py`), by value: the masked mean with padding, the k3 KL against numbers worked
out by hand, the ratio check, the update statistics, the NaN guard, the evaluation schedule and the warnings a history
raises."""

import math

import pytest
import torch

from rlhf_course.engine import rl
from rlhf_course.engine.training import NonFiniteLossError


def test_masked_mean_counts_answer_tokens_only():
    values = torch.tensor([[1.0, 2.0, 100.0], [4.0, -50.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # (1 + 2 + 4) / 3: the padding (100, −50, 7) never counts, and the mean is over tokens, not rows
    assert rl.masked_mean(values, mask).item() == pytest.approx(7 / 3)
    assert rl.masked_mean(values, torch.zeros_like(mask)).item() == 0.0  # nothing to average: 0, not NaN


def test_k3_by_hand():
    """k3 = e^d − 1 − d: at d = ln 2, 2 − 1 − ln 2 = 0.306853; at d = −ln 2, ½ − 1 + ln 2 = 0.193147; 0 at d = 0."""
    d = torch.tensor([math.log(2), -math.log(2), 0.0])
    torch.testing.assert_close(rl.k3_kl(d), torch.tensor([1 - math.log(2), math.log(2) - 0.5, 0.0]))
    assert rl.k3_kl(d)[2].item() == 0.0


def test_k3_is_never_negative_and_exact_for_tiny_ratios():
    d = torch.linspace(-5, 5, 101)
    assert torch.all(rl.k3_kl(d) >= 0)
    # near d = 0, k3 ≈ d²/2: e^d − 1 computed as expm1 keeps it where exp(d) − 1 would round to 0
    tiny = torch.tensor([1e-5])
    assert rl.k3_kl(tiny).item() == pytest.approx(0.5e-10, rel=1e-3)


def test_ratio_check():
    rl.check_ratio_is_one(torch.full((2, 3), 5e-5), "PPO")
    with pytest.raises(AssertionError, match="GRPO ratio is not 1"):
        rl.check_ratio_is_one(torch.tensor([[0.0, 1e-3]]), "GRPO")
    with pytest.raises(AssertionError):
        rl.check_ratio_is_one(torch.tensor([[float("nan")]]), "PPO")


def test_update_stats_by_hand():
    """Two tokens in the answer, one of padding: log ρ = (ln 1.5, 0), ε = 0.2.
    clip fraction ½ (1.5 is past 1.2); ratio (1.5 + 1)/2; approx-KL (0.5 − ln 1.5 + 0)/2; entropy (1 + 3)/2."""
    log_ratio = torch.tensor([[math.log(1.5), 0.0, 0.0]])
    entropy = torch.tensor([[1.0, 3.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    stats = rl.update_stats(log_ratio, entropy, mask, clip_range=0.2)
    assert list(stats) == ["clip_fraction", "approx_kl", "ratio", "entropy"]
    expected = {"clip_fraction": 0.5, "ratio": 1.25, "approx_kl": (0.5 - math.log(1.5)) / 2, "entropy": 2.0}
    assert {k: v.item() for k, v in stats.items()} == pytest.approx(expected)
    # the iteration's numbers are each statistic's mean over the minibatches
    twice = rl.mean_over_minibatches([stats, {k: v * 3 for k, v in stats.items()}])
    assert twice == pytest.approx({k: 2 * v for k, v in expected.items()})


def test_a_non_finite_loss_restores_the_policy_and_names_the_method():
    policy = torch.nn.Linear(2, 1)
    before = {k: v.detach().clone() for k, v in policy.state_dict().items()}
    with torch.no_grad():
        policy.weight.add_(1.0)
    rl.stop_if_not_finite({"the loss": torch.tensor(0.5)}, 3, policy, before, "GRPO")  # finite: nothing happens
    assert not torch.equal(policy.weight, before["weight"])
    with pytest.raises(NonFiniteLossError, match="GRPO stopped.*restored to its weights before GRPO"):
        rl.stop_if_not_finite({"the loss": torch.tensor(float("inf"))}, 3, policy, before, "GRPO")
    assert torch.equal(policy.weight, before["weight"])


def test_gold_every_few_iterations_and_after_the_last():
    state, seen = rl.RLState(), []
    for iteration in range(7):
        rl.finish_iteration(state, {"iteration": iteration + 1}, "policy",
                            lambda policy: (0.5, {"answers": [policy]}), lambda s: seen.append(len(s.history)),
                            eval_every=3, iterations=7)
    assert [r["iteration"] for r in state.history if "gold" in r] == [1, 4, 7]
    assert [s["iteration"] for s in state.samples] == [1, 4, 7] and state.samples[0]["answers"] == ["policy"]
    assert seen == [1, 2, 3, 4, 5, 6, 7]


def _history(**changes):
    base = {"kl": 1.0, "ratio": 1.0, "approx_kl": 0.005, "entropy": 2.0, "mean_length": 60.0, "reward": 0.0}
    records = [dict(base, iteration=i + 1) for i in range(6)]
    for key, values in changes.items():
        for record, value in zip(records, values):
            record[key] = value
    return records


def test_a_healthy_history_raises_no_warning():
    assert rl.diagnose(_history()) == []


@pytest.mark.parametrize("changes,word", [
    ({"kl": [0, -1, -1, -1, -1, -1]}, "negative"),
    ({"ratio": [1, 1, 1, 1.3, 1.3, 1.3]}, "ratio"),
    ({"entropy": [2, 1, 0.5, 0.2, 0.2, 0.2]}, "Entropy collapsed"),
    ({"mean_length": [60, 40, 20, 5, 4, 3]}, "shrinking"),
    ({"gold": [0.7, 0.75, 0.8, 0.78, 0.74, 0.70], "reward": [0, 0.3, 0.5, 0.9, 1.2, 1.5]}, "Reward hacking"),
])
def test_each_failure_mode_is_recognised(changes, word):
    warnings = rl.diagnose(_history(**changes))
    assert len(warnings) == 1 and word in warnings[0]
