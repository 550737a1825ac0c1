"""Sampling answers and their log-probs: what every phase from SFT to PPO needs (tokens, log-probs, masks).

Implementation details that matter for RLHF (Huang et al. 2024, "The N+ Implementation Details of RLHF with PPO"):
1. Prompts are left-padded with a pad token distinct from EOS, so every answer starts at the same column.
2. Position ids count real tokens only (`cumsum(mask) - 1`): a left-padded prompt gives the same logits
   as the unpadded one (tested).
3. Plain sampling from `softmax(logits / temperature)`: no top-k, top-p or repetition penalty, so the
   log-probs returned here are exactly those PPO recomputes with `answer_logprobs` (tested).
4. Sampling stops at EOS; everything after it is pad, with `response_mask` 0.
5. The returned answers are as wide as the longest one, not `max_new_tokens`: PPO's forward passes over
   the batch never spend time on columns of padding.

`reference_decode` is the sampler to read: one `model(...)` call per token with the model's own key/value
cache, for any causal LM of `transformers`. For Llama-layout models such as the course's own, `sample` takes
`fast_decoding` instead, which computes the same tokens from the same random numbers, only faster (tested).

An answer's log-probs, the one computation every phase uses (`token_logprobs`): per token, `answer_logprobs`
(B, T) of left-padded prompts + answers (PPO, GRPO, the KL of evaluation); summed over the answer,
`answer_logprob_sums` (B,) of right-padded conversations whose labels mark the answer (DPO), from the logits
`answer_logprob_sums_from_logits` (exercise 06.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.engine import fast_decoding
from rlhf_course.engine.sampling import draw, position_ids_from_mask
from rlhf_course.world.tokenizer import chat_prompt

IGNORE_INDEX = -100  # label of a token that carries no loss (PyTorch's cross-entropy default)


@dataclass
class Rollout:
    """A batch of sampled answers. B = batch, P = prompt length, T = answer length."""

    prompt_ids: torch.Tensor  # (B, P) left-padded
    prompt_mask: torch.Tensor  # (B, P) 1 on real prompt tokens
    response_ids: torch.Tensor  # (B, T) pad after EOS
    response_mask: torch.Tensor  # (B, T) 1 on answer tokens, EOS included
    logprobs: torch.Tensor  # (B, T) log π(token) at the sampling temperature, 0 where masked
    ended: torch.Tensor  # (B,) True where the answer ended with EOS

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)  # (B, P + T)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.response_mask], dim=1)  # (B, P + T)

    @property
    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(1)  # (B,)

    def texts(self, tokenizer: PreTrainedTokenizerBase) -> list[str]:
        return tokenizer.batch_decode(self.response_ids, skip_special_tokens=True)


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, instructions: list[str], max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chat-format and left-pad `instructions`: `(prompt_ids, prompt_mask)`, each (B, P)."""
    if not instructions:
        raise ValueError("no prompts to sample from (the prompt list is empty)")
    texts = [chat_prompt(tokenizer, instruction) for instruction in instructions]
    encoded = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False, padding_side="left")
    if max_len is not None and encoded.input_ids.shape[1] > max_len:
        longest = max(range(len(texts)), key=lambda i: int(encoded.attention_mask[i].sum()))
        raise ValueError(
            f"prompt {longest} is {int(encoded.attention_mask[longest].sum())} tokens, longer than the "
            f"{max_len} the model can take with room for its answer: {instructions[longest][:80]!r}"
        )
    return encoded.input_ids, encoded.attention_mask


@torch.no_grad()
def reference_decode(model, prompt_ids, prompt_mask, max_new_tokens, temperature, eos_token_id, generator=None):
    """The plain sampler: one `model(...)` call per new token, with the model's own key/value cache.

    Works for any causal LM of `transformers`. Returns `(response_ids, logprobs, ended)`, (B, N), (B, N), (B,);
    what a row writes after its EOS is cut by `sample`. One uniform random number per row and step (`draw`),
    the same stream the fast decoder uses, so both give the same answers (tested).
    """
    B, device = prompt_ids.shape[0], prompt_ids.device
    response_ids = torch.zeros(B, max_new_tokens, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    attention_mask = prompt_mask
    # 1.-2. the left-padded prompt at padding-aware positions (pad ids replaced by 0: they are masked anyway)
    positions = position_ids_from_mask(prompt_mask)
    out = model(input_ids=prompt_ids.masked_fill(prompt_mask == 0, 0), attention_mask=attention_mask,
                position_ids=positions, use_cache=True)
    next_position = positions[:, -1:] + 1  # (B, 1)
    for t in range(max_new_tokens):
        # 3. plain sampling at a temperature; the log-prob is taken from the same distribution
        uniform = torch.rand(B, generator=generator, device=device, dtype=torch.float64)
        token, token_logprob = draw(out.logits[:, -1], temperature, uniform)
        response_ids[:, t], logprobs[:, t] = token, token_logprob
        # 4. stop when every answer has ended
        ended |= token == eos_token_id
        if t == max_new_tokens - 1 or bool(ended.all()):
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        out = model(input_ids=token[:, None], attention_mask=attention_mask, position_ids=next_position,
                    cache=out.cache, use_cache=True)
        next_position = next_position + 1
    return response_ids, logprobs, ended


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    fixed_shape: bool | None = None,
) -> Rollout:
    """Sample one answer per prompt from `softmax(logits / temperature)`; the answers as a `Rollout`.

    Any causal LM samples with `reference_decode`. A Llama-layout model (`fast_decoding.supports`) takes the
    fast decoder instead, the same computation: on a CPU finished answers leave the batch; with `fixed_shape`
    (default: when the model is on a GPU) the batch keeps its shape and every decoding step is the same
    computation on the same memory, which a GPU records once as a CUDA graph and replays.
    """
    device = model.device
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    if fixed_shape is None:
        fixed_shape = device.type == "cuda"
    if not fast_decoding.supports(model):
        response_ids, logprobs, ended = reference_decode(model, prompt_ids, prompt_mask, max_new_tokens,
                                                         temperature, eos_token_id, generator)
    elif fixed_shape:
        response_ids, logprobs, ended = fast_decoding.FixedShapeDecoding.get(
            model, prompt_ids.shape[0], prompt_ids.shape[1], max_new_tokens, temperature, eos_token_id
        ).run(prompt_ids, prompt_mask, generator)
    else:
        response_ids, logprobs, ended = fast_decoding.decode_shrinking(model, prompt_ids, prompt_mask, max_new_tokens,
                                                                       temperature, eos_token_id, generator)

    # Everything after the first EOS is padding.
    is_eos = response_ids == eos_token_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    response_mask = (~after_eos).long()
    response_ids = response_ids.masked_fill(after_eos, pad_token_id)
    logprobs = logprobs.masked_fill(after_eos, 0.0)
    # 5. columns that are padding in every row are cut: every later forward pass over the batch is shorter.
    width = max(1, int(response_mask.sum(1).max()))
    return Rollout(prompt_ids, prompt_mask, response_ids[:, :width], response_mask[:, :width], logprobs[:, :width],
                   ended)


@dataclass
class Answers:
    """Sampled answers as text, with their length in tokens and whether each ended with EOS."""

    prompts: list[str]
    texts: list[str]
    lengths: list[int]
    ended: list[bool]
    kl: list[float] = field(default_factory=list)  # Σ_t log π(a_t) − log π_ref(a_t), when a reference is given


def sample_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    instructions: list[str],
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 100,
    progress: bool = True,
    reference: PreTrainedModel | None = None,
    reference_temperature: float | None = None,
) -> Answers:
    """One answer per instruction, sampled in batches. The seed fixes the answers for a given model.

    With a `reference` model, also the KL estimate log π(answer) − log π_ref(answer) of each answer, π_ref at
    `reference_temperature` (default: the sampling temperature). So SFT sampled at 0.7 (or greedily, temperature 0)
    against SFT at 1 says how far a colder sampler moved from the one every phase is compared with.
    """
    from tqdm.auto import tqdm

    max_prompt = model.config.max_position_embeddings - max_new_tokens
    generator = torch.Generator(device=model.device).manual_seed(seed)
    answers = Answers(list(instructions), [], [], [])
    starts = range(0, len(instructions), batch_size)
    for start in tqdm(starts, desc="sampling", disable=not progress or len(starts) < 2, leave=False):
        ids, mask = encode_prompts(tokenizer, instructions[start : start + batch_size], max_prompt)
        rollout = sample(
            model, ids, mask, max_new_tokens, temperature, tokenizer.eos_token_id, tokenizer.pad_token_id, generator
        )
        answers.texts += rollout.texts(tokenizer)
        answers.lengths += rollout.lengths.tolist()
        answers.ended += rollout.ended.tolist()
        if reference is not None:
            with torch.no_grad():
                ref_logprobs = answer_logprobs(reference, rollout.input_ids, rollout.attention_mask, ids.shape[1],
                                               temperature if reference_temperature is None else reference_temperature)
            answers.kl += ((rollout.logprobs - ref_logprobs) * rollout.response_mask).sum(1).tolist()
    return answers


def padded_logits(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's logits (B, L, V) for padded sequences: positions count real tokens only, pad ids are replaced by
    0 (they are masked anyway), so padding on either side changes no real token's logits."""
    return model(
        input_ids=input_ids.masked_fill(attention_mask == 0, 0),
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
    ).logits


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0, with_entropy: bool = False):
    """log π(a_t) = log_softmax(logits_t / temperature)[a_t] for logits (B, T, V) already aligned with their tokens
    (B, T): the distribution `sample` draws from. With `with_entropy`, also H_t = −Σ_v π(v) log π(v):
    `(logprobs, entropy)`, both (B, T). Computed in float32 whatever the logits are."""
    log_softmax = torch.log_softmax(logits.float() / temperature, dim=-1)
    logprobs = log_softmax.gather(2, tokens[..., None]).squeeze(2)  # (B, T)
    if not with_entropy:
        return logprobs
    return logprobs, -(log_softmax.exp() * log_softmax).sum(-1)


def answer_logprobs(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
):
    """Log-probs of the answer tokens `input_ids[:, prompt_len:]` under `model` at `temperature`: (B, T).

    log π(a_t) = log_softmax(logits_{t−1} / temperature)[a_t]: the distribution `sample` draws from, at
    padding-aware positions. What PPO's rollout and update, GRPO's, and the reference model's KL use; DPO's sums
    are `answer_logprob_sums`. With `with_entropy`, also the entropy of π at each answer position:
    `(logprobs, entropy)`, both (B, T). Masking the positions that are not answer tokens is the caller's.
    """
    logits = padded_logits(model, input_ids, attention_mask)  # (B, P + T, V)
    # position i predicts token i + 1
    return token_logprobs(logits[:, prompt_len - 1 : -1], input_ids[:, prompt_len:], temperature, with_entropy)


def answer_logprob_sums_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log π(y | x) = Σ_t log π(y_t | x, y_<t) over the answer tokens (labels ≠ IGNORE_INDEX): (B,), from the logits
    (B, T, V) of right-padded prompt + answer and their labels (B, T), IGNORE_INDEX on prompt and padding.

    Log-probs of a sequence add up because its probability is the product of its tokens' (the chain rule); the
    logits at position t give the token at t + 1 (Rafailov et al. 2023, eq. 7 uses these sums)."""
    targets = labels[:, 1:]
    logprobs = token_logprobs(logits[:, :-1], targets.clamp(min=0))  # (B, T − 1); ignored labels gather token 0
    return (logprobs * (targets != IGNORE_INDEX)).sum(1)


def answer_logprob_sums(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        labels: torch.Tensor) -> torch.Tensor:
    """log π(y | x) of each right-padded conversation (B, T) under `model`, summed over the answer tokens its
    `labels` mark (≠ IGNORE_INDEX): (B,). The per-token terms are `answer_logprobs`' (temperature 1)."""
    return answer_logprob_sums_from_logits(padded_logits(model, input_ids, attention_mask), labels)
