"""Fast batched sampling with a KV cache, returning what PPO needs: tokens, log-probs and masks.

Implementation details that matter for RLHF (numbers as in `shared/notes/ppo-details.md`):
1. Prompts are left-padded with a pad token distinct from EOS, so every answer starts at the same column.
2. Position ids count real tokens only (`cumsum(mask) - 1`): a left-padded prompt gives the same logits
   as the unpadded one (tested).
3. Plain sampling from `softmax(logits / temperature)`: no top-k, top-p or repetition penalty, so the
   log-probs returned here are exactly those PPO recomputes with `sequence_logprobs` (tested).
4. Sampling stops at EOS; everything after it is pad, with `response_mask` 0.
5. Finished answers leave the batch (their rows are dropped from the KV cache), so the remaining steps
   only compute what is still being written. This is most of the speed-up over `model.generate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import warnings

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from .tokenizer import chat_prompt

# `past_key_values=` works on every transformers 5.x (5.24 renames it `cache=` and warns until 5.40).
warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)


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


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: 0 at the first real token (pads get 0 too; they are masked)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


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
def sample(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample one answer per prompt from `softmax(logits / temperature)` with a KV cache."""
    device = model.device
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    B = prompt_ids.shape[0]
    response_ids = torch.full((B, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)

    # 2. padding-aware positions for the prompt; the answer continues from the last real position.
    positions = position_ids_from_mask(prompt_mask)
    cache = DynamicCache()
    out = model(
        input_ids=prompt_ids.masked_fill(prompt_mask == 0, 0),
        attention_mask=prompt_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    active = torch.arange(B, device=device)  # rows still writing, in cache order
    attention_mask = prompt_mask
    next_position = positions[:, -1] + 1  # (B,)
    logits = out.logits[:, -1]  # (B, V)
    for t in range(max_new_tokens):
        # 3. plain sampling at a temperature; the log-prob is taken from the same distribution.
        step_logprobs = F.log_softmax(logits.float() / temperature, dim=-1)  # (b, V)
        token = torch.multinomial(step_logprobs.exp(), 1, generator=generator).squeeze(1)  # (b,)
        response_ids[active, t] = token
        logprobs[active, t] = step_logprobs.gather(1, token[:, None]).squeeze(1)
        # 4. stop at EOS.
        finished = token == eos_token_id
        ended[active[finished]] = True
        if t == max_new_tokens - 1 or finished.all():
            break
        # 5. finished answers leave the batch.
        if finished.any():
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            active, token = active[keep], token[keep]
            attention_mask, next_position = attention_mask[keep], next_position[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(active), 1)], dim=1)
        out = model(
            input_ids=token[:, None],
            attention_mask=attention_mask,
            position_ids=next_position[:, None],
            past_key_values=cache,
            use_cache=True,
        )
        next_position = next_position + 1
        logits = out.logits[:, -1]

    # Everything after the first EOS is padding.
    is_eos = response_ids == eos_token_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    response_mask = (~after_eos).long()
    response_ids = response_ids.masked_fill(after_eos, pad_token_id)
    logprobs = logprobs.masked_fill(after_eos, 0.0)
    return Rollout(prompt_ids, prompt_mask, response_ids, response_mask, logprobs, ended)


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
) -> Answers:
    """One answer per instruction, sampled in batches. The seed fixes the answers for a given model.

    With a `reference` model, also the KL estimate log π(answer) − log π_ref(answer) of each answer.
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
                ref_logprobs = sequence_logprobs(
                    reference, rollout.input_ids, rollout.attention_mask, ids.shape[1], temperature
                )
            answers.kl += ((rollout.logprobs - ref_logprobs) * rollout.response_mask).sum(1).tolist()
    return answers


def sequence_logprobs(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-probs of the answer tokens `input_ids[:, prompt_len:]` under `model` at `temperature`: (B, T).

    The same distribution `sample` draws from: logits / temperature, padding-aware positions.
    """
    logits = model(
        input_ids=input_ids.masked_fill(attention_mask == 0, 0),
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
    ).logits  # (B, P + T, V)
    logits = logits[:, prompt_len - 1 : -1].float() / temperature  # (B, T, V): position i predicts token i+1
    targets = input_ids[:, prompt_len:]  # (B, T)
    return torch.log_softmax(logits, dim=-1).gather(2, targets[..., None]).squeeze(2)  # (B, T)
