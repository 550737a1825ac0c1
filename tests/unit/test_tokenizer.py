"""The BPE tokenizer: special tokens, round trips and the chat template."""

import pytest
import torch

from rlhf_course import world
from rlhf_course.world import tokenizer


@pytest.fixture(scope="module")
def tok():
    return tokenizer.train_tokenizer([d["text"] for d in world.make_corpus(800, seed=0)], vocab_size=600)


def test_special_tokens_are_distinct(tok):
    assert tok.pad_token_id != tok.eos_token_id
    ids = {tok.convert_tokens_to_ids(t) for t in tokenizer.SPECIAL_TOKENS}
    assert len(ids) == len(tokenizer.SPECIAL_TOKENS)
    assert tok.padding_side == "left"


def test_round_trip_any_text(tok):
    for text in ["Once upon a time, there was a little fox named Lily.", "Zürich 😀 ünïcode!", ""]:
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_chat_template_renders_roles_and_ends_answers_with_eos(tok):
    messages = [{"role": "user", "content": "Write a story."}, {"role": "assistant", "content": "Once."}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == "<|user|>Write a story.<|end|><|assistant|>Once.<|endoftext|>"
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>Write a story.<|end|><|assistant|>"
    ids = tok.apply_chat_template(messages, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert ids[-1] == tok.eos_token_id


def test_special_tokens_are_single_ids(tok):
    ids = tok(tokenizer.chat_prompt(tok, "Hi"), add_special_tokens=False).input_ids
    assert ids[0] == tok.convert_tokens_to_ids(tokenizer.USER)
    assert ids[-1] == tok.convert_tokens_to_ids(tokenizer.ASSISTANT)


def test_save_and_reload(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.pad_token_id == tok.pad_token_id and again.eos_token_id == tok.eos_token_id
    assert tokenizer.chat_prompt(again, "Hi") == tokenizer.chat_prompt(tok, "Hi")
    assert again.padding_side == "left"


def test_corpus_stream_is_each_document_then_eos(tok):
    from rlhf_course.phases import pretrain

    texts = [d["text"] for d in world.make_corpus(20, seed=1)] + [""]
    stream = pretrain.tokenize_corpus(tok, texts)
    expected = [i for text in texts for i in tok(text, add_special_tokens=False).input_ids + [tok.eos_token_id]]
    assert stream.tolist() == expected and stream.dtype == torch.long


def test_chat_text_is_the_templates_conversation_for_the_course_tokenizer(tok):
    # one way to write prompt + answer (the sampler's: prompt, answer, EOS); for the course's own template it
    # is exactly the template's conversation, so SFT's and the reward model's data did not change with it
    messages = [{"role": "user", "content": "Write a story."}, {"role": "assistant", "content": "Once, a fox."}]
    conversation = tok.apply_chat_template(messages, tokenize=False)
    assert tokenizer.chat_text(tok, "Write a story.", "Once, a fox.") == conversation
