"""The fast decoder on what the course's own model never exercises: grouped-query attention (a Hub Llama such as
SmolLM or TinyLlama has fewer key/value heads than query heads) with an untied output layer, against the model's own
forward pass; and the cache of fixed-shape decoders. (The course's model, both loops, the same tokens as the
reference sampler from the same random numbers, other architectures: test_generation.py.)"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlhf_course.engine import fast_decoding, generation


@pytest.fixture()
def gqa_llama(tok):
    """4 query heads sharing 2 key/value heads (query heads 0, 1 read kv head 0; 2, 3 read kv head 1)."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=192,
                         tie_word_embeddings=False, rope_theta=500_000.0, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None)
    return LlamaForCausalLM(config).eval()


def _prompts(tok):
    return generation.encode_prompts(tok, ["Write a sad story about Tom.", "Hi", "Tell me a story about a cat."])


def test_prefill_gives_the_models_logits_with_grouped_query_attention(tok, gqa_llama):
    assert fast_decoding.supports(gqa_llama)
    ids, mask = _prompts(tok)
    decoder = fast_decoding.KVCacheDecoder(gqa_llama, ids.shape[0], ids.shape[1] + 4)
    logits, next_position = decoder.prefill(ids, mask)
    with torch.no_grad():
        expected = gqa_llama(input_ids=ids, attention_mask=mask,
                             position_ids=generation.position_ids_from_mask(mask)).logits[:, -1]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-4)
    assert next_position.tolist() == mask.sum(1).tolist()  # the answer continues after the real prompt tokens


@pytest.mark.parametrize("fixed_shape", [False, True])
def test_sampled_log_probs_are_the_models_with_grouped_query_attention(tok, gqa_llama, fixed_shape):
    ids, mask = _prompts(tok)
    rollout = generation.sample(gqa_llama, ids, mask, 16, 1.0, tok.eos_token_id, tok.pad_token_id,
                                torch.Generator().manual_seed(0), fixed_shape=fixed_shape)
    recomputed = generation.answer_logprobs(gqa_llama, rollout.input_ids, rollout.attention_mask, ids.shape[1])
    torch.testing.assert_close(rollout.logprobs, recomputed * rollout.response_mask, atol=1e-4, rtol=1e-4)


def test_fixed_shape_decoders_are_kept_per_shape_four_at_most(small_model):
    get = fast_decoding.FixedShapeDecoding.get
    first = get(small_model, 2, 13, 8, 1.0, 1)
    assert first.P == 16 and get(small_model, 2, 16, 8, 1.0, 1) is first  # prompts bucketed to a multiple of 8
    others = [get(small_model, 2, 17, 8, 1.0, 1), get(small_model, 3, 16, 8, 1.0, 1),
              get(small_model, 2, 16, 8, 0.7, 1)]
    assert others[0].P == 24 and len({id(first), *map(id, others)}) == 4
    assert get(small_model, 2, 16, 8, 1.0, 1) is first
    get(small_model, 2, 16, 9, 1.0, 1)  # a fifth shape: the oldest (`first`) makes room
    assert get(small_model, 2, 16, 8, 1.0, 1) is not first
    assert len(fast_decoding.FixedShapeDecoding._instances[small_model]) == 4
