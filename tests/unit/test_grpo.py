"""RLOO's and GRPO's advantages, the k3 KL and the clipped group loss against values worked out by hand."""

import math

import pytest
import torch

from rlhf_course import grpo


def test_rloo_baseline_is_the_mean_of_the_other_answers():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 3.0]])
    # answer 0: 1 − (0 + 0 + 3)/3 = 0; answer 3: 3 − 1/3
    torch.testing.assert_close(grpo.rloo_advantages(rewards), torch.tensor([[0.0, -4 / 3, -4 / 3, 3 - 1 / 3]]))
    K = rewards.shape[1]
    torch.testing.assert_close(grpo.rloo_advantages(rewards), K / (K - 1) * (rewards - rewards.mean()))


def test_grpo_normalises_within_each_group_and_dr_grpo_does_not():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    std = math.sqrt(1 / 3)  # sample std of (1, 0, 1, 0)
    expected = torch.tensor([[0.5, -0.5, 0.5, -0.5]]) / (std + 1e-4)
    torch.testing.assert_close(grpo.grpo_advantages(rewards)[:1], expected)
    assert torch.all(grpo.grpo_advantages(rewards)[1] == 0)  # all alike: nothing to learn from this group
    torch.testing.assert_close(grpo.grpo_advantages(rewards, normalize_std=False),
                               torch.tensor([[0.5, -0.5, 0.5, -0.5], [0.0, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[1.0], [2.0]]), "at least 2 answers"),
    (torch.tensor([[1.0, float("nan")]]), "finite"),
    (torch.tensor([1.0, 2.0]), r"\(prompts, K\)"),
    ([[1.0, 2.0]], r"\(prompts, K\)"),
])
def test_bad_rewards_are_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        grpo.grpo_advantages(bad)
    with pytest.raises(ValueError, match=message):
        grpo.rloo_advantages(bad)


def test_k3_is_zero_at_equal_policies_and_never_negative():
    lp = torch.tensor([[-1.0, -2.0, -0.5]])
    assert torch.all(grpo.k3_kl(lp, lp) == 0)
    ref = torch.tensor([[-1.5, -1.0, -3.0]])
    k3 = grpo.k3_kl(lp, ref)
    assert torch.all(k3 >= 0)
    torch.testing.assert_close(k3[0, 0], torch.tensor(math.exp(-0.5) + 0.5 - 1))


def test_group_loss_at_ratio_one_and_its_two_normalisations():
    logprobs = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    advantages = torch.tensor([1.0, -2.0])
    # ratio 1: per token −A; GRPO averages each answer's tokens, then the answers: (−1 + 2)/2
    assert grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2).item() == pytest.approx(0.5)
    # Dr. GRPO: every token counts once, over B · max_tokens: (−1·3 + 2·1) / (2 · 3)
    assert grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2,
                                 length_normalize=False).item() == pytest.approx(-1 / 6)
    # a ratio past 1 + ε for a positive advantage is clipped: the loss stops rewarding it
    moved = torch.full((2, 3), math.log(1.5))
    assert grpo.grpo_policy_loss(moved, logprobs, torch.tensor([1.0, 1.0]), mask, 0.2).item() == pytest.approx(-1.2)
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2, kl_coef=0.1)


def test_group_size_from_a_budget():
    assert grpo.group_size_for(64, 16) == 4
    with pytest.raises(ValueError):
        grpo.group_size_for(64, 64)
