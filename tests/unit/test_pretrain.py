"""Pretraining: the next-token loss on logits worked out by hand, the random windows, the held-out loss as one mean
over all its blocks, and the loop's first loss and learning rates. (`tokenize_corpus`: test_tokenizer.py.)"""

import copy
import math

import pytest
import torch

from rlhf_course.config import PretrainConfig
from rlhf_course.engine import training
from rlhf_course.phases import pretrain


def test_next_token_loss_by_hand():
    """Logits are log-probabilities here (each row sums to 1 after softmax), V = 2.

    Row 0, tokens (0, 1, 1): position 0 (p = (¼, ¾)) predicts token 1: −ln ¾ = 0.287682; position 1 (p = (½, ½))
    predicts token 1: ln 2 = 0.693147; position 2 (p = (0.9, 0.1)) predicts nothing (no token after it).
    Row 1, tokens (1, 0, 0), every position (½, ½): ln 2 twice.
    Mean over the B·(T − 1) = 4 predictions: (0.287682 + 3 · 0.693147) / 4 = 0.591781.
    (Without the shift: (ln 4 + ln 2 + ln 10 + 3 ln 2)/6 = 1.0769; shifted the wrong way: (ln 2 + ln 10 + 2 ln 2)/4
    = 1.0955.)"""
    probs = torch.tensor([[[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]],
                          [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])
    ids = torch.tensor([[0, 1, 1], [1, 0, 0]])
    expected = (-math.log(0.75) + 3 * math.log(2)) / 4
    assert pretrain.next_token_loss(probs.log(), ids).item() == pytest.approx(expected, abs=1e-6)
    # a constant added to a position's logits changes nothing (softmax)
    shifted = probs.log() + torch.tensor([3.0, -1.0, 7.0])[None, :, None]
    assert pretrain.next_token_loss(shifted, ids).item() == pytest.approx(expected, abs=1e-6)


def test_random_blocks_are_windows_of_the_stream():
    stream = torch.arange(100, 150)
    blocks = pretrain.random_blocks(stream, 6, 8, torch.Generator().manual_seed(0))
    assert blocks.shape == (6, 8)
    for block in blocks:  # 8 consecutive tokens starting anywhere a whole window fits
        start = block[0].item() - 100
        assert 0 <= start <= 50 - 8 and block.tolist() == list(range(100 + start, 108 + start))
    again = pretrain.random_blocks(stream, 6, 8, torch.Generator().manual_seed(0))
    assert torch.equal(blocks, again)


def test_heldout_loss_is_the_mean_over_every_whole_block(small_model):
    # 43 tokens in blocks of 8: 5 whole blocks (the last 3 tokens are left out), read in batches of 2, 2 and 1;
    # the result is the mean over the 5 blocks, not the mean of the 3 batch means
    stream = torch.randint(0, small_model.config.vocab_size, (43,), generator=torch.Generator().manual_seed(1))
    blocks = stream[:40].view(5, 8)
    with torch.no_grad():
        expected = pretrain.next_token_loss(small_model(input_ids=blocks).logits, blocks).item()
    assert pretrain.heldout_loss(small_model, stream, 8, batch_size=2) == pytest.approx(expected, abs=1e-5)


def test_the_loop_logs_the_schedule_and_the_loss_of_the_batch_it_trains_on(small_model):
    stream = torch.randint(0, small_model.config.vocab_size, (200,), generator=torch.Generator().manual_seed(2))
    config = PretrainConfig(steps=3, batch_size=2, block_size=16, lr=1e-2, warmup_steps=1)
    before = copy.deepcopy(small_model)
    history = pretrain.pretrain(small_model, stream, config, seed=5)
    # step 0 trains on the first random blocks of the seed's generator, with the untrained weights
    first = pretrain.random_blocks(stream, 2, 16, torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = pretrain.next_token_loss(before(input_ids=first).logits, first).item()
    assert history[0]["loss"] == pytest.approx(expected, abs=1e-5)
    # warm-up 1, then cosine over the 2 remaining steps: 1e-2, 1e-2 (progress 0), 1e-3 + 9e-3 · ½ (progress ½)
    assert [r["lr"] for r in history] == pytest.approx([1e-2, 1e-2, 5.5e-3])
    assert [r["lr"] for r in history] == [training.cosine_lr(s, 3, 1, 1e-2) for s in range(3)]
    assert not torch.equal(small_model.lm_head.weight, before.lm_head.weight)
