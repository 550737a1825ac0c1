"""SFT: the loss mask (prompt tokens carry no loss) and that training lowers the loss."""

import dataclasses

import pytest
import torch
from datasets import Dataset

from rlhf_course import world
from rlhf_course.config import SFTConfig, WorldConfig
from rlhf_course.phases import sft
from rlhf_course.world import tokenizer


def test_prompt_tokens_carry_no_label(tok):
    example = sft.tokenize_demonstration(tok, "Write a happy story.", "Once upon a time. The end.")
    n_prompt = len(tok(tokenizer.chat_prompt(tok, "Write a happy story."), add_special_tokens=False).input_ids)
    assert example["labels"][:n_prompt] == [sft.IGNORE_INDEX] * n_prompt
    assert example["labels"][n_prompt:] == example["input_ids"][n_prompt:]
    assert example["labels"][-1] == tok.eos_token_id


def test_prompt_tokens_get_no_gradient(tok, small_model):
    """Changing the logits at prompt positions changes nothing: the loss does not see them."""
    example = sft.tokenize_demonstration(tok, "Write a sad story about Tom.", "Tom cried. The end.")
    batch = sft.collate([example], tok.pad_token_id)
    logits = small_model(input_ids=batch["input_ids"]).logits.detach().requires_grad_(True)
    sft.sft_loss(logits, batch["labels"]).backward()
    n_prompt = sum(label == sft.IGNORE_INDEX for label in example["labels"])
    # position t predicts token t+1: positions before the last prompt token predict prompt tokens.
    assert torch.all(logits.grad[0, : n_prompt - 1] == 0)
    assert torch.all(logits.grad[0, n_prompt - 1 : -1].abs().sum(-1) > 0)  # the last position has no target


def test_sft_loss_matches_hand_computed_cross_entropy():
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])  # (B=1, T=3, V=2)
    labels = torch.tensor([[sft.IGNORE_INDEX, 0, 1]])
    expected = -(torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[1] + torch.log_softmax(torch.tensor([0.0, 0.0]), 0)[0]) / 2
    assert sft.sft_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dataset_tokenization_gives_each_row_as_tokenize_demonstration_does(tok):
    rows = [{"prompt": d["prompt"], "response": d["response"]} for d in world.make_demonstrations(40, seed=1)]
    rows.append({"prompt": "Write a story.", "response": "Once upon a time. " * 40})  # over max_len: dropped
    tokenized = sft.tokenize_demonstrations(tok, Dataset.from_list(rows), max_len=160)
    expected = [sft.tokenize_demonstration(tok, r["prompt"], r["response"]) for r in rows]
    kept = [e for e in expected if len(e["input_ids"]) <= 160]
    assert len(expected) - 1 >= len(kept) >= 30
    assert tokenized[:] == {key: [e[key] for e in kept] for key in ("input_ids", "labels")}


def test_collate_right_pads_with_no_loss_on_padding(tok):
    rows = [sft.tokenize_demonstration(tok, "A", "B b b b."), sft.tokenize_demonstration(tok, "A", "B.")]
    batch = sft.collate(rows, tok.pad_token_id)
    short = len(rows[1]["input_ids"])
    assert torch.all(batch["labels"][1, short:] == sft.IGNORE_INDEX)
    assert torch.all(batch["attention_mask"][1, short:] == 0)


def test_training_lowers_the_loss_and_changes_every_parameter(tok, small_model):
    data = Dataset.from_list([{"prompt": "Write a story.", "response": "Once upon a time. The end."}] * 32)
    tokenized = sft.tokenize_demonstrations(tok, data, max_len=128)
    before = {n: p.detach().clone() for n, p in small_model.named_parameters()}
    config = dataclasses.replace(SFTConfig(), epochs=10, batch_size=8, lr=1e-2, warmup_steps=2)
    history = sft.train_sft(small_model, tokenized, config, tok.pad_token_id)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    unchanged = [n for n, p in small_model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged


def test_demonstration_dataset_holds_both_sources_in_a_seeded_order():
    small = WorldConfig(demonstrations=30)
    demos = sft.demonstration_dataset(small, seed=0)
    hand_written = world.load_hand_written_demonstrations()
    assert demos.column_names == ["prompt", "response", "flaws"]
    assert len(demos) == 30 + len(hand_written)
    assert {r["response"] for r in hand_written} <= set(demos["response"])
    assert demos["response"] == sft.demonstration_dataset(small, seed=0)["response"]
    assert demos["response"] != sft.demonstration_dataset(small, seed=1)["response"]
