"""DPO: the loss against hand-worked values, a learning-signal check, the implicit reward. (The summed answer
log-probs it trains on: test_generation.py.)"""

import copy
import math

import pytest
import torch

from rlhf_course.config import DPOConfig
from rlhf_course.engine import generation
from rlhf_course.phases import dpo, sft


def test_loss_is_log_two_when_the_policy_is_the_reference():
    logps = torch.tensor([-12.0, -30.0, -7.5])
    other = torch.tensor([-10.0, -31.0, -9.0])
    assert dpo.dpo_loss(logps, other, logps, other, beta=0.1).item() == pytest.approx(math.log(2))


def test_loss_hand_value():
    # margins: chosen +1, rejected −2 → β·(1 − (−2)) = 0.3 → −log σ(0.3)
    loss = dpo.dpo_loss(torch.tensor([-9.0]), torch.tensor([-14.0]), torch.tensor([-10.0]), torch.tensor([-12.0]), 0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.3)))


def test_training_raises_the_implicit_reward_margin(tok, small_model):
    import copy

    reference = copy.deepcopy(small_model)
    pairs = [{"prompt": f"Write a story about {n}.", "chosen": f"{n} smiled. The end.",
              "rejected": f"{n} is stupid. Go away."} for n in ["Lily", "Tom", "Mia", "Ben"] * 4]
    history = dpo.train_dpo(small_model, reference, tok, pairs, DPOConfig(epochs=5, batch_size=8, lr=3e-3,
                                                                         warmup_steps=1))
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # π = π_ref at the start
    assert history[-1]["margin"] > 0.5 and history[-1]["accuracy"] == 1.0


def test_bad_beta_is_refused(tok, small_model):
    with pytest.raises(ValueError, match="beta"):
        dpo.train_dpo(small_model, small_model, tok, [], DPOConfig(beta=-1.0))


def test_implicit_rewards_are_beta_times_the_log_ratio(tok, small_model):
    prompts, answers = ["Write a story about Tom.", "Hi"], ["Tom smiled. The end.", "Hello there, friend."]
    reference = copy.deepcopy(small_model)
    assert dpo.implicit_rewards(small_model, reference, tok, prompts, answers, beta=0.1) == [0.0, 0.0]
    with torch.no_grad():
        for parameter in small_model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    examples = [sft.tokenize_demonstration(tok, p, a) for p, a in zip(prompts, answers)]
    tensors = sft.collate(examples, tok.pad_token_id)
    with torch.no_grad():
        logps = [generation.answer_logprob_sums(model, **tensors) for model in (small_model, reference)]
    expected = 0.1 * (logps[0] - logps[1])
    got = dpo.implicit_rewards(small_model, reference, tok, prompts, answers, beta=0.1, batch_size=1)
    torch.testing.assert_close(torch.tensor(got), expected, atol=1e-5, rtol=1e-4)
