"""The sampler: its log-probs are the model's, left padding changes nothing, EOS ends an answer; an answer's log-prob
summed over the tokens its labels mark, the same per-token numbers as PPO's."""

from types import SimpleNamespace

import pytest
import torch

from rlhf_course.engine import fast_decoding, generation, sampling
from rlhf_course.phases import sft


def _prompts(tok, texts):
    return generation.encode_prompts(tok, texts)


def test_left_padded_prompt_gives_the_same_logits_as_unpadded(tok, small_model):
    ids, mask = _prompts(tok, ["Write a happy story about a fox named Lily in the forest.", "Hi"])
    assert mask[1, 0] == 0, "the short prompt must be left-padded"
    padded_logits = small_model(
        input_ids=ids, attention_mask=mask, position_ids=sampling.position_ids_from_mask(mask)
    ).logits
    alone_ids, _ = _prompts(tok, ["Hi"])
    alone_logits = small_model(input_ids=alone_ids).logits
    n = alone_ids.shape[1]
    torch.testing.assert_close(padded_logits[1, -n:], alone_logits[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_logprobs_equal_a_full_forward_pass(tok, small_model, temperature):
    ids, mask = _prompts(tok, ["Write a sad story about Tom.", "Tell me a story", "Hi"])
    rollout = generation.sample(
        small_model, ids, mask, 24, temperature, tok.eos_token_id, tok.pad_token_id, torch.Generator().manual_seed(0)
    )
    recomputed = generation.answer_logprobs(
        small_model, rollout.input_ids, rollout.attention_mask, ids.shape[1], temperature
    )
    recomputed = recomputed * rollout.response_mask
    torch.testing.assert_close(rollout.logprobs, recomputed, atol=1e-4, rtol=1e-4)


def test_answers_stop_at_eos_and_are_padded_after_it(tok, small_model):
    # Make EOS likely so that some answers end early.
    ids, mask = _prompts(tok, ["a"] * 16)
    bias = torch.zeros(len(tok))
    bias[tok.eos_token_id] = 3.0
    handle = small_model.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    rollout = generation.sample(
        small_model, ids, mask, 30, 1.0, tok.eos_token_id, tok.pad_token_id, torch.Generator().manual_seed(1)
    )
    handle.remove()
    assert rollout.ended.any()
    for row, ended, length in zip(rollout.response_ids, rollout.ended, rollout.lengths):
        if ended:
            assert row[length - 1] == tok.eos_token_id
            assert torch.all(row[length:] == tok.pad_token_id)
            assert (row[:length] == tok.eos_token_id).sum() == 1
        else:
            assert length == 30 and tok.eos_token_id not in row.tolist()
    assert torch.all(rollout.logprobs[rollout.response_mask == 0] == 0)


def test_sampling_is_reproducible_with_a_seed(tok, small_model):
    a = generation.sample_answers(small_model, tok, ["Write a story."] * 4, 12, seed=5, progress=False)
    b = generation.sample_answers(small_model, tok, ["Write a story."] * 4, 12, seed=5, progress=False)
    assert a.texts == b.texts


def test_empty_and_too_long_prompts_are_clear_errors(tok, small_model):
    with pytest.raises(ValueError, match="empty"):
        generation.encode_prompts(tok, [])
    with pytest.raises(ValueError, match="longer than"):
        generation.sample_answers(small_model, tok, ["word " * 400], max_new_tokens=16, progress=False)


@pytest.mark.parametrize("fixed_shape", [False, True])
def test_static_cache_decoder_matches_the_model_at_every_step(tok, small_model, fixed_shape):
    # Both sampling loops (rows leave the batch / fixed shape, as replayed in a CUDA graph) must produce the
    # log-probs a full forward pass gives, including rows that ended early.
    ids, mask = _prompts(tok, ["Write a sad story about Tom.", "Hi", "Tell me a story about a cat."] * 3)
    eos_bias = torch.zeros(small_model.config.vocab_size)
    eos_bias[tok.eos_token_id] = 4.0  # some answers end early, others run on
    handle = small_model.lm_head.register_forward_hook(lambda module, inputs, logits: logits + eos_bias)
    generator = torch.Generator().manual_seed(3)
    try:
        # twice: the second call reuses the fixed-shape buffers (and, on a GPU, the recorded graph), after an
        # optimizer-like in-place update of the weights, as between two PPO rollouts
        for prompts in (ids, ids.flip(0)):
            prompt_mask = mask if prompts is ids else mask.flip(0)
            if prompts is not ids:
                with torch.no_grad():
                    for parameter in small_model.parameters():
                        parameter.add_(torch.randn_like(parameter), alpha=0.05)
            rollout = generation.sample(small_model, prompts, prompt_mask, 20, 1.0, tok.eos_token_id,
                                        tok.pad_token_id, generator, fixed_shape=fixed_shape)
            recomputed = generation.answer_logprobs(small_model, rollout.input_ids, rollout.attention_mask,
                                                      ids.shape[1]) * rollout.response_mask
            lengths = rollout.lengths
            assert lengths.min() < 20 and lengths.max() > lengths.min(), "the test needs answers of different lengths"
            torch.testing.assert_close(rollout.logprobs, recomputed, atol=1e-4, rtol=1e-4)
    finally:
        handle.remove()


def test_draw_samples_the_distribution_and_never_a_token_of_probability_zero():
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125, 0.0])
    logits = probs.log().expand(40_000, -1)  # log 0 = -inf: the last token can never be drawn
    uniform = torch.rand(40_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    token, logprob = sampling.draw(logits, 1.0, uniform)
    frequencies = torch.bincount(token, minlength=5).double() / len(token)
    torch.testing.assert_close(frequencies, probs.double(), atol=0.01, rtol=0)  # 4 standard errors at most
    assert frequencies[4] == 0
    torch.testing.assert_close(logprob, probs.log()[token])
    # the ends of the unit interval: the first token, and the last one with any probability
    ends = torch.tensor([0.0, 1.0 - 2.0**-53], dtype=torch.float64)
    assert sampling.draw(probs.log().expand(2, -1), 1.0, ends)[0].tolist() == [0, 3]
    # a temperature sharpens the same distribution: at T = 0.5, p ∝ probs², so token 0 has 0.25 / 0.34375 of it
    token, _ = sampling.draw(logits, 0.5, uniform)
    assert abs((token == 0).double().mean() - 0.25 / 0.34375) < 0.01


def test_temperature_zero_is_greedy_and_matches_generate(tok, small_model):
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    token, logprob = sampling.draw(logits, 0.0, torch.rand(2, dtype=torch.float64))
    assert token.tolist() == [1, 0] and logprob.tolist() == [0.0, 0.0]
    ids, mask = _prompts(tok, ["Write a happy story about a fox named Lily in the forest."])
    ours = generation.sample(small_model, ids, mask, 16, 0.0, tok.eos_token_id, tok.pad_token_id)
    theirs = small_model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=16,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    n = ours.lengths[0].item()
    assert ours.response_ids[0, :n].tolist() == theirs[0, ids.shape[1]:][:n].tolist()


# ---- the reference sampler, the fast decoder, and models of other architectures ---------------------------


def _other_architecture(tok, kind: str):
    """A small causal LM of another architecture, built from a config with the course's tokenizer: a GPT-2
    (learned positions, no `model.model`) or a Qwen2 (biases on q, k and v, which the fast decoder lacks)."""
    from transformers import AutoModelForCausalLM, GPT2Config, Qwen2Config

    torch.manual_seed(0)
    common = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id,
              "bos_token_id": None}
    if kind == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=192, resid_pdrop=0.0, embd_pdrop=0.0,
                            attn_pdrop=0.0, **common)
    else:
        config = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             num_key_value_heads=1, max_position_embeddings=192, **common)
    model = AutoModelForCausalLM.from_config(config).eval()
    if kind == "qwen2":
        with torch.no_grad():  # fresh biases are 0; make them matter
            for layer in model.model.layers:
                for projection in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    projection.bias.normal_(0, 0.5)
    return model


def test_the_fast_decoder_is_taken_for_llama_models_only(tok, small_model):
    assert fast_decoding.supports(small_model)
    assert not fast_decoding.supports(_other_architecture(tok, "gpt2"))
    assert not fast_decoding.supports(_other_architecture(tok, "qwen2"))


@pytest.mark.parametrize("fixed_shape", [False, True])
def test_fast_decoder_gives_the_reference_samplers_tokens_from_the_same_random_numbers(tok, small_model,
                                                                                         fixed_shape):
    ids, mask = _prompts(tok, ["Write a sad story about Tom.", "Hi", "Tell me a story about a cat."] * 2)
    eos = tok.eos_token_id
    reference = generation.reference_decode(small_model, ids, mask, 24, 0.8, eos, torch.Generator().manual_seed(4))
    if fixed_shape:
        P = -(-ids.shape[1] // 8) * 8
        fast = fast_decoding.FixedShapeDecoding(small_model, ids.shape[0], P, 24, 0.8, eos).run(
            ids, mask, torch.Generator().manual_seed(4))
    else:  # rows never leave the batch here, so both loops draw one number per row and step
        fast = fast_decoding.decode_shrinking(small_model, ids, mask, 24, 0.8, eos, torch.Generator().manual_seed(4),
                                              leave_every=2.0)
    for ids_ref, ids_fast in ((reference[0], fast[0]), (reference[2], fast[2])):
        assert torch.equal(ids_ref, ids_fast)
    # log-probs: the same where an answer is still being written (after EOS a row's tokens are cut anyway)
    is_eos = reference[0] == eos
    live = (is_eos.long().cumsum(1) - is_eos.long()) == 0
    torch.testing.assert_close(reference[1] * live, fast[1] * live, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_any_causal_lm_samples_from_its_own_distribution(tok, kind):
    # The fast decoder read a Qwen2's weights without its q/k/v biases: 1.39 nats off a full forward pass.
    model = _other_architecture(tok, kind)
    ids, mask = _prompts(tok, ["Write a sad story about Tom.", "Hi", "Tell me a story about a cat."])
    rollout = generation.sample(model, ids, mask, 16, 1.0, tok.eos_token_id, tok.pad_token_id,
                                torch.Generator().manual_seed(0))
    recomputed = generation.answer_logprobs(model, rollout.input_ids, rollout.attention_mask, ids.shape[1])
    torch.testing.assert_close(rollout.logprobs, recomputed * rollout.response_mask, atol=1e-4, rtol=1e-4)
    answers = generation.sample_answers(model, tok, ["Write a story."] * 3, 8, seed=1, progress=False)
    assert len(answers.texts) == 3


def test_the_log_probs_of_ppo_and_dpo_are_one_computation(tok, small_model):
    # PPO reads left-padded prompt + answer, DPO right-padded conversations with labels; the same tokens must
    # get the same log-probs (both go through generation.token_logprobs)
    prompts = ["Write a sad story about Tom.", "Hi"]
    answers = ["Tom was sad. The end.", "Once upon a time, there was a cat."]
    ids, mask = _prompts(tok, prompts)
    answer_ids = [tok(a + tok.eos_token, add_special_tokens=False).input_ids for a in answers]
    width = max(map(len, answer_ids))
    padded = torch.tensor([a + [tok.pad_token_id] * (width - len(a)) for a in answer_ids])
    answer_mask = torch.tensor([[1] * len(a) + [0] * (width - len(a)) for a in answer_ids])
    left = generation.answer_logprobs(small_model, torch.cat([ids, padded], 1), torch.cat([mask, answer_mask], 1),
                                      ids.shape[1])
    rows = [sft.tokenize_demonstration(tok, p, a) for p, a in zip(prompts, answers)]
    right = generation.answer_logprob_sums(small_model, **sft.collate(rows, tok.pad_token_id))
    torch.testing.assert_close((left * answer_mask).sum(1), right, atol=1e-4, rtol=1e-4)


class _Bigram:
    """A language model whose next-token distribution depends on the current token only: logits_t = W[x_t]."""

    def __init__(self, vocab_size: int):
        self.W = torch.randn(vocab_size, vocab_size, generator=torch.Generator().manual_seed(0)) * 2

    def __call__(self, input_ids, attention_mask=None, position_ids=None):
        return SimpleNamespace(logits=self.W[input_ids])


def test_answer_logprob_sums_ignore_the_prompt(tok):
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
    logps = generation.answer_logprob_sums(model, **batch)
    log_p = torch.log_softmax(model.W, dim=-1)
    ids, labels = a["input_ids"], a["labels"]
    expected = sum(log_p[ids[j - 1], ids[j]] for j in range(1, len(ids)) if labels[j] != generation.IGNORE_INDEX)
    torch.testing.assert_close(logps, torch.stack([expected, expected]))
    # with every label ignored nothing is summed at all
    only_prompt = dict(batch, labels=torch.full_like(batch["labels"], generation.IGNORE_INDEX))
    assert torch.all(generation.answer_logprob_sums(model, **only_prompt) == 0)
    # the same sums from the logits (exercise 06.2's function)
    logits = model(batch["input_ids"]).logits
    torch.testing.assert_close(generation.answer_logprob_sums_from_logits(logits, batch["labels"]), logps)
