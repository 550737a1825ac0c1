"""DPO: the loss against hand-worked values, answer-only log-probs, and a learning-signal check."""

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from rlhf_course.config import DPOConfig
from rlhf_course.phases import dpo, sft


def test_loss_is_log_two_when_the_policy_is_the_reference():
    logps = torch.tensor([-12.0, -30.0, -7.5])
    other = torch.tensor([-10.0, -31.0, -9.0])
    assert dpo.dpo_loss(logps, other, logps, other, beta=0.1).item() == pytest.approx(math.log(2))


def test_loss_hand_value():
    # margins: chosen +1, rejected −2 → β·(1 − (−2)) = 0.3 → −log σ(0.3)
    loss = dpo.dpo_loss(torch.tensor([-9.0]), torch.tensor([-14.0]), torch.tensor([-10.0]), torch.tensor([-12.0]), 0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.3)))


class _Bigram:
    """A language model whose next-token distribution depends on the current token only: logits_t = W[x_t]."""

    def __init__(self, vocab_size: int):
        self.W = torch.randn(vocab_size, vocab_size, generator=torch.Generator().manual_seed(0)) * 2

    def __call__(self, input_ids, attention_mask=None, position_ids=None):
        return SimpleNamespace(logits=self.W[input_ids])


def test_answer_logprobs_ignore_the_prompt(tok):
    """The same answer after a short and a long prompt. Under a bigram model the answer's log-prob is
    log p(y_1 | <|assistant|>) + Σ_t log p(y_t | y_{t−1}): the chat template ends every prompt with the same token,
    so both rows must score exactly the same, and that sum is computed here token by token. Summing the prompt's
    tokens too would make the rows differ (10 and 22 prompt tokens); a mask off by one would count the
    <|end|> → <|assistant|> step and drop the EOS."""
    answer = "Lily smiled. The end."
    a = sft.tokenize_demonstration(tok, "Write a happy story.", answer)
    b = sft.tokenize_demonstration(tok, "Write a sad story about a fox named Lily in the forest.", answer)
    assert len(a["input_ids"]) != len(b["input_ids"]) and a["input_ids"][-12:] == b["input_ids"][-12:]
    batch = sft.collate([a, b], tok.pad_token_id)  # a is right-padded to b's length
    model = _Bigram(len(tok))
    logps = dpo.answer_logprobs(model, **batch)
    log_p = torch.log_softmax(model.W, dim=-1)
    ids, labels = a["input_ids"], a["labels"]
    expected = sum(log_p[ids[j - 1], ids[j]] for j in range(1, len(ids)) if labels[j] != sft.IGNORE_INDEX)
    torch.testing.assert_close(logps, torch.stack([expected, expected]))
    # with every label ignored nothing is summed at all
    only_prompt = dict(batch, labels=torch.full_like(batch["labels"], sft.IGNORE_INDEX))
    assert torch.all(dpo.answer_logprobs(model, **only_prompt) == 0)


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
        expected = 0.1 * (dpo.answer_logprobs(small_model, **tensors) - dpo.answer_logprobs(reference, **tensors))
    got = dpo.implicit_rewards(small_model, reference, tok, prompts, answers, beta=0.1, batch_size=1)
    torch.testing.assert_close(torch.tensor(got), expected, atol=1e-5, rtol=1e-4)
