"""GRPO's KL penalty in the loss, β·k3, by value: its size under both normalisations, its direction (which of π and
π_ref is which), the mask, its gradient, and that the loop passes β to the loss only with `kl_in="loss"`.
(The advantages, k3 ≥ 0 and the clipped term: test_grpo.py.)"""

import dataclasses
import math

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import GRPOConfig, get_profile
from rlhf_course.engine import models
from rlhf_course.phases import grpo, reward

LN2 = math.log(2)


def _batch():
    """Two answers, T = 3; answer 0 has 2 tokens, answer 1 has 1. log π_ref − log π per token:
    answer 0: (ln 2, −ln 2), answer 1: (−ln 2); the masked columns hold garbage (5, 3, −4) that must not count.
    k3 = e^x − x − 1 at x = ln 2: 2 − ln 2 − 1 = 1 − ln 2 = 0.306853;
    at x = −ln 2: ½ + ln 2 − 1 = ln 2 − ½ = 0.193147."""
    logprobs = torch.tensor([[-1.0, -1.5, -0.7], [-2.0, -0.3, -0.9]])
    log_ratio = torch.tensor([[LN2, -LN2, 5.0], [-LN2, 3.0, -4.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    return logprobs, logprobs + log_ratio, mask


def test_k3_per_token_by_hand():
    logprobs, ref, mask = _batch()
    k3 = grpo.k3_kl(logprobs, ref) * mask
    torch.testing.assert_close(k3, torch.tensor([[1 - LN2, LN2 - 0.5, 0.0], [LN2 - 0.5, 0.0, 0.0]]))


def test_the_kl_term_of_the_loss_by_hand():
    """Ratio 1 and advantage 0, so the loss is β·k3 alone (β = ½).
    GRPO: each answer's mean, then the answers' mean: answer 0 ((1 − ln 2) + (ln 2 − ½))/2 = ¼, answer 1 ln 2 − ½,
    L = ½ · (¼ + ln 2 − ½)/2 = 0.110787. (π and π_ref swapped: answer 1 would be 1 − ln 2 and L = 0.139213.)
    Dr. GRPO: every answer token once over B·max_tokens = 2·3: ½ · ((1 − ln 2) + 2(ln 2 − ½))/6 = ½ · ln 2/6."""
    logprobs, ref, mask = _batch()
    zero = torch.zeros(2)
    loss = grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref, kl_coef=0.5)
    assert loss.item() == pytest.approx(0.5 * (0.25 + LN2 - 0.5) / 2, abs=1e-6)
    dr = grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref, kl_coef=0.5,
                               length_normalize=False, max_tokens=3)
    assert dr.item() == pytest.approx(0.5 * LN2 / 6, abs=1e-6)
    # the two terms add: advantages (1, −2) at ratio 1 give −A per token, (−1 + 2)/2 = ½ under GRPO's averaging
    both = grpo.grpo_policy_loss(logprobs, logprobs, torch.tensor([1.0, -2.0]), mask, 0.2, ref_logprobs=ref,
                                 kl_coef=0.5)
    assert both.item() == pytest.approx(0.5 + 0.5 * (0.25 + LN2 - 0.5) / 2, abs=1e-6)
    # β = 0 leaves the clipped term alone, whatever the reference says
    assert grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref).item() == 0.0


def test_the_kl_term_pulls_each_token_toward_the_reference():
    """∂k3/∂log π = 1 − π_ref/π = 1 − e^x: −1 where π_ref = 2π (x = ln 2), ½ where π_ref = π/2. Times β = ½ and the
    averaging weights (1/(2 tokens · 2 answers) for answer 0, 1/(1 · 2) for answer 1):
    (−0.125, 0.0625, 0) and (0.125, 0, 0). Gradient descent raises log π where the reference finds the token more
    likely and lowers it where less."""
    logprobs, ref, mask = _batch()
    logprobs = logprobs.clone().requires_grad_(True)
    old = logprobs.detach().clone()
    grpo.grpo_policy_loss(logprobs, old, torch.zeros(2), mask, 0.2, ref_logprobs=ref, kl_coef=0.5).backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[-0.125, 0.0625, 0.0], [0.125, 0.0, 0.0]]))


# --------------------------------------------------------------------------------------------------
# The loop passes β to the loss only where the KL is in the loss
# --------------------------------------------------------------------------------------------------

SMALL = GRPOConfig(iterations=1, prompts_per_iteration=2, group_size=2, minibatch_size=4, epochs=1,
                   max_new_tokens=8, kl_coef=0.3)


@pytest.mark.parametrize("kl_in, passed", [("loss", 0.3), ("reward", 0.0)])
def test_the_loop_puts_beta_in_the_loss_only_with_kl_in_loss(tok, small_model, runs, monkeypatch, kl_in, passed):
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    load = lambda: models.load_checkpoint("sft", "tiny", device="cpu")[0]  # noqa: E731
    policy, reference = load(), load()
    torch.manual_seed(0)
    reward_model = reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()
    calls, loss = [], grpo.grpo_policy_loss

    def spy(logprobs, old_logprobs, advantages, mask, clip_range, **kwargs):
        calls.append(dict(kwargs, old_logprobs=old_logprobs, mask=mask))
        return loss(logprobs, old_logprobs, advantages, mask, clip_range, **kwargs)

    monkeypatch.setattr(grpo, "grpo_policy_loss", spy)
    grpo.train_grpo(policy, reference, tok, world.prompt_set("ppo_train", 4),
                    dataclasses.replace(SMALL, kl_in=kl_in), reward_model=reward_model)
    [call] = calls
    assert call["kl_coef"] == passed
    # the reference's log-probs are the frozen copy's: before any update the policy is the reference, so they equal
    # the policy's own (k3 = 0 at the first step)
    torch.testing.assert_close(call["ref_logprobs"] * call["mask"], call["old_logprobs"] * call["mask"])
