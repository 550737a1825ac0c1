"""Fast batched sampling with a KV cache, returning what PPO needs: tokens, log-probs and masks.

Implementation details that matter for RLHF (numbers as in `shared/notes/ppo-details.md`):
1. Prompts are left-padded with a pad token distinct from EOS, so every answer starts at the same column.
2. Position ids count real tokens only (`cumsum(mask) - 1`): a left-padded prompt gives the same logits
   as the unpadded one (tested).
3. Plain sampling from `softmax(logits / temperature)`: no top-k, top-p or repetition penalty, so the
   log-probs returned here are exactly those PPO recomputes with `sequence_logprobs` (tested).
4. Sampling stops at EOS; everything after it is pad, with `response_mask` 0.
5. Finished answers leave the batch (their rows are dropped from the KV cache), so the remaining steps
   only compute what is still being written. This is most of the speed-up over `model.generate` on a CPU.
6. The returned answers are as wide as the longest one, not `max_new_tokens`: PPO's forward passes over
   the batch never spend time on columns of padding.
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .tokenizer import chat_prompt


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


class KVCacheDecoder:
    """A Llama-style model's forward pass written out for sampling, with a static key/value cache.

    It runs on the model's own modules and weights (norms, projections, MLPs, rotary frequencies), so it
    computes the same logits as `model(...)`; what it adds is the cache, laid out as fixed slots:

        keys, values: (layers, B, kv_heads, S, head_dim), S = prompt + answer length
        slot s holds the key/value of column s (the left-padded prompt, then the answer, one slot per step)

    A query at slot s attends to every filled, real (non-pad) slot ≤ s. A step writes one slot in place: no
    cache concatenation and none of the general-purpose bookkeeping of `model.forward`, and with a fixed
    batch the same computation on the same memory every step, which a GPU can replay as a CUDA graph.
    """

    def __init__(self, model: PreTrainedModel, batch_size: int, max_len: int):
        config, body = model.config, model.model
        self.model, self.body = model, body
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.inv_freq = body.rotary_emb.inv_freq.float()  # rotary frequencies, as the model computes them
        self.rope_scaling = body.rotary_emb.attention_scaling
        weight = model.get_input_embeddings().weight
        shape = (len(body.layers), batch_size, config.num_key_value_heads, max_len, self.head_dim)
        self.keys = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.zeros_like(self.keys)
        self.filled = torch.zeros(batch_size, max_len, dtype=torch.bool, device=weight.device)  # real, written slots
        self.kv_groups = config.num_attention_heads // config.num_key_value_heads

    def select_rows(self, rows: torch.Tensor, length: int) -> None:
        """Keep only batch `rows` (in that order). Only the `length` slots written so far are copied: the
        rest are written before they are ever read (attention only looks at `visible` slots)."""
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty(old.shape[0], len(rows), *old.shape[2:])
            new[:, :, :, :length] = old[:, rows, :, :length]
            setattr(self, name, new)
        self.filled = self.filled[rows]

    def prefill(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the left-padded prompts (B, P) at padding-aware positions into slots 0 … P-1: `(logits of the
        last prompt token (B, V), the position the answer continues from (B,))`."""
        positions = position_ids_from_mask(prompt_mask)
        logits = self.forward(prompt_ids.masked_fill(prompt_mask == 0, 0), positions,
                              torch.arange(prompt_ids.shape[1], device=prompt_ids.device), prompt_mask.bool(),
                              visible=prompt_ids.shape[1])
        return logits, positions[:, -1] + 1

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, slots: torch.Tensor,
                real: torch.Tensor, visible: int | None = None) -> torch.Tensor:
        """Run tokens `input_ids` (B, T) at rotary positions `position_ids` (B, T), store their keys/values in
        cache `slots` (T,), and return the logits of the last column, (B, V). `real` (B, T) marks non-pad
        tokens. Attention looks at the first `visible` slots only (all of them when None)."""
        B, T = input_ids.shape
        self.filled.index_copy_(1, slots, real)
        keys_visible = self.filled if visible is None else self.filled[:, :visible]
        slot_ids = torch.arange(keys_visible.shape[1], device=slots.device)
        # (B, 1, T, S): a real slot at or before the query's slot; every query may always see itself
        can_see = (keys_visible[:, None, :] & (slot_ids[None, None, :] <= slots[None, :, None])) | (
            slot_ids[None, None, :] == slots[None, :, None])
        can_see = can_see[:, None]
        freqs = position_ids[..., None].float() * self.inv_freq  # (B, T, head_dim / 2)
        angles = torch.cat([freqs, freqs], dim=-1)[:, None]  # (B, 1, T, head_dim)
        cos, sin = angles.cos() * self.rope_scaling, angles.sin() * self.rope_scaling

        def rotate(x):  # rotary position embedding, as in the model: x·cos + rotate_half(x)·sin
            half = x.shape[-1] // 2
            return x * cos.to(x.dtype) + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin.to(x.dtype)

        hidden = self.body.embed_tokens(input_ids)  # (B, T, hidden)
        for i, layer in enumerate(self.body.layers):
            attention = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attention.q_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, heads, T, head_dim)
            k = attention.k_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
            v = attention.v_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
            q, k = rotate(q), rotate(k)
            self.keys[i].index_copy_(2, slots, k.to(self.keys.dtype))
            self.values[i].index_copy_(2, slots, v.to(self.values.dtype))
            keys = self.keys[i] if visible is None else self.keys[i, :, :, :visible]
            values = self.values[i] if visible is None else self.values[i, :, :, :visible]
            if self.kv_groups > 1:  # grouped-query attention: each key/value head serves several query heads
                keys, values = keys.repeat_interleave(self.kv_groups, 1), values.repeat_interleave(self.kv_groups, 1)
            # attention written out (on a CPU, faster for one query token than the fused kernel)
            scores = (q @ keys.transpose(2, 3).to(q.dtype)) * self.scaling  # (B, heads, T, S)
            weights = scores.float().masked_fill(~can_see, -math.inf).softmax(-1).to(q.dtype)
            out = weights @ values.to(q.dtype)  # (B, heads, T, head_dim)
            hidden = hidden + attention.o_proj(out.transpose(1, 2).reshape(B, T, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return self.model.lm_head(self.body.norm(hidden[:, -1]))  # (B, V)


def draw(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None,
         noise: torch.Tensor | None = None):
    """One token per row from softmax(logits / temperature), and its log-prob: `(token, logprob)`, each (B,).

    Gumbel-max: argmax(log p − log E) with E ~ Exp(1) is an exact sample from p (no sort, no cumulative sum,
    no host synchronisation). `noise` (B, V) is E drawn in advance; without it, E comes from `generator`.
    """
    logprobs = F.log_softmax(logits.float() / temperature, dim=-1)  # (B, V)
    if noise is None:
        noise = torch.empty_like(logprobs).exponential_(generator=generator)
    token = (logprobs - noise.log()).argmax(dim=-1)
    return token, logprobs.gather(1, token[:, None]).squeeze(1)


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
    """Sample one answer per prompt from `softmax(logits / temperature)` with a static KV cache.

    On a CPU, finished answers leave the batch. With `fixed_shape` (default: when the model is on a GPU) the
    batch keeps its shape and every decoding step is the same computation on the same memory, which a GPU
    records once as a CUDA graph and replays: there a step is microseconds of arithmetic behind milliseconds
    of kernel launches, and a graph launches them all at once (see `FixedShapeDecoding`).
    """
    device = model.device
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    if fixed_shape is None:
        fixed_shape = device.type == "cuda"
    if fixed_shape:
        response_ids, logprobs, ended = FixedShapeDecoding.get(
            model, prompt_ids.shape[0], prompt_ids.shape[1], max_new_tokens, temperature, eos_token_id
        ).run(prompt_ids, prompt_mask, generator)
    else:
        response_ids, logprobs, ended = _decode_shrinking(model, prompt_ids, prompt_mask, max_new_tokens,
                                                          temperature, eos_token_id, generator)

    # Everything after the first EOS is padding.
    is_eos = response_ids == eos_token_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    response_mask = (~after_eos).long()
    response_ids = response_ids.masked_fill(after_eos, pad_token_id)
    logprobs = logprobs.masked_fill(after_eos, 0.0)
    # 6. columns that are padding in every row are cut: every later forward pass over the batch is shorter.
    width = max(1, int(response_mask.sum(1).max()))
    return Rollout(prompt_ids, prompt_mask, response_ids[:, :width], response_mask[:, :width], logprobs[:, :width],
                   ended)


def _decode_shrinking(model, prompt_ids, prompt_mask, max_new_tokens, temperature, eos_token_id, generator):
    """The CPU loop: finished answers leave the batch. Returns `(response_ids, logprobs, ended)`."""
    device = prompt_ids.device
    B, P = prompt_ids.shape
    response_ids = torch.zeros(B, max_new_tokens, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    decoder = KVCacheDecoder(model, B, P + max_new_tokens)
    # 1.–2. the left-padded prompt at padding-aware positions fills slots 0 … P-1
    logits, next_position = decoder.prefill(prompt_ids, prompt_mask)
    active = torch.arange(B, device=device)  # rows still writing, in cache order
    for t in range(max_new_tokens):
        # 3. plain sampling at a temperature; the log-prob is taken from the same distribution.
        token, token_logprob = draw(logits, temperature, generator)  # (b,)
        response_ids[active, t] = token
        logprobs[active, t] = token_logprob
        # 4. stop at EOS.
        finished = token == eos_token_id
        ended[active[finished]] = True
        if t == max_new_tokens - 1 or finished.all():
            break
        # 5. finished answers leave the batch.
        if finished.any():
            keep = (~finished).nonzero().squeeze(1)
            decoder.select_rows(keep, P + t)
            active, token, next_position = active[keep], token[keep], next_position[keep]
        logits = decoder.forward(token[:, None], next_position[:, None], torch.tensor([P + t], device=device),
                                 torch.ones(len(active), 1, dtype=torch.bool, device=device), visible=P + t + 1)
        next_position = next_position + 1
    return response_ids, logprobs, ended


class FixedShapeDecoding:
    """Decoding for one shape (batch B, prompt length P, N new tokens) on buffers that never move, so that a
    GPU can record a decoding step once as a CUDA graph and replay it for every step of every later call with
    the same shape (PPO samples the same batch size each iteration; prompts are left-padded to a multiple of
    8 so that few prompt lengths occur). On a CPU the same step runs eagerly.

    Everything a step reads or writes is a buffer here: the last token, its position, the cache slot and the
    answer column are counters on the device that the step itself advances, and the randomness of every step
    (the Gumbel-max noise, N × B × V) is drawn from the caller's generator before the first step. Finished
    rows keep being computed (their tokens after EOS are cut afterwards); the host only checks every
    `check_every` steps whether all rows have ended.
    """

    _instances: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()  # model -> {shape: instance}
    keep = 4  # shapes kept per model (each holds a KV cache of B × (P + N) slots)

    @classmethod
    def get(cls, model, batch_size, prompt_len, max_new_tokens, temperature, eos_token_id) -> FixedShapeDecoding:
        P = -(-prompt_len // 8) * 8
        key = (batch_size, P, max_new_tokens, temperature, eos_token_id, model.get_input_embeddings().weight.dtype)
        shapes = cls._instances.setdefault(model, {})
        if key not in shapes:
            while len(shapes) >= cls.keep:
                shapes.pop(next(iter(shapes)))
            shapes[key] = cls(model, *key[:5])
        return shapes[key]

    def __init__(self, model, batch_size, prompt_len, max_new_tokens, temperature, eos_token_id):
        B, P, N = batch_size, prompt_len, max_new_tokens
        device = model.device
        self.P, self.N, self.temperature, self.eos_token_id = P, N, temperature, eos_token_id
        self.decoder = KVCacheDecoder(model, B, P + N)
        self.noise = torch.empty(N, B, model.get_output_embeddings().out_features, device=device)
        self.response_ids = torch.zeros(B, N, dtype=torch.long, device=device)
        self.logprobs = torch.zeros(B, N, device=device)
        self.ended = torch.zeros(B, dtype=torch.bool, device=device)
        self.token = torch.zeros(B, dtype=torch.long, device=device)
        self.position = torch.zeros(B, dtype=torch.long, device=device)
        self.slot = torch.tensor([P], device=device)  # the cache slot the next step writes
        self.column = torch.tensor([1], device=device)  # the answer column the next step writes
        self.real = torch.ones(B, 1, dtype=torch.bool, device=device)
        self.graph = None

    def step(self) -> None:
        logits = self.decoder.forward(self.token[:, None], self.position[:, None], self.slot, self.real)
        noise = self.noise.index_select(0, self.column).squeeze(0)
        token, token_logprob = draw(logits, self.temperature, noise=noise)
        self.token.copy_(token)
        self.response_ids.index_copy_(1, self.column, token[:, None])
        self.logprobs.index_copy_(1, self.column, token_logprob[:, None])
        self.ended.logical_or_(token == self.eos_token_id)
        self.position.add_(1), self.slot.add_(1), self.column.add_(1)

    def capture(self) -> None:
        """Record `step` as a CUDA graph. Warm-up and capture run the step, so the counters and the cache's
        filled-slot mask are restored after (the slots and columns they touched are rewritten before read)."""
        state = (self.token, self.position, self.slot, self.column, self.ended, self.decoder.filled)
        saved = [x.clone() for x in state]
        graph = torch.cuda.CUDAGraph()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.step()
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(graph):
                self.step()
            self.graph = graph
        except RuntimeError as error:  # never lose a rollout over a graph: the same steps run eagerly
            warnings.warn(f"CUDA graph capture failed ({error}); sampling without it")
            self.graph = False
        for x, value in zip(state, saved):
            x.copy_(value)

    def run(self, prompt_ids, prompt_mask, generator=None, check_every: int = 8):
        """Sample for a left-padded batch: `(response_ids, logprobs, ended)` (B, N), (B, N), (B,)."""
        extra = self.P - prompt_ids.shape[1]  # more left padding up to the bucketed prompt length
        prompt_ids = F.pad(prompt_ids, (extra, 0))
        prompt_mask = F.pad(prompt_mask, (extra, 0))
        self.decoder.filled.zero_()
        self.noise.exponential_(generator=generator)
        # 1.–2. the left-padded prompt at padding-aware positions fills slots 0 … P-1
        logits, next_position = self.decoder.prefill(prompt_ids, prompt_mask)
        # 3. the first answer token; the steps write the rest
        token, token_logprob = draw(logits, self.temperature, noise=self.noise[0])
        self.token.copy_(token)
        self.response_ids[:, 0], self.logprobs[:, 0] = token, token_logprob
        self.ended.copy_(token == self.eos_token_id)
        self.position.copy_(next_position)
        self.slot.fill_(self.P)
        self.column.fill_(1)
        if self.graph is None and prompt_ids.is_cuda and self.N > 3:
            self.capture()
        for t in range(1, self.N):
            if t % check_every == 0 and bool(self.ended.all()):  # 4. stop when every answer has ended
                break
            self.graph.replay() if self.graph else self.step()
        return self.response_ids.clone(), self.logprobs.clone(), self.ended.clone()


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
