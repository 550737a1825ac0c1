"""Speed only: sampling for Llama-layout models, computing exactly what `generation.reference_decode` computes
(tested: the same tokens and log-probs from the same random numbers). A learner can skip this module.

`generation.sample` comes here only for the models `supports` accepts (a Llama without projection biases, such
as the course's own); every other causal LM samples with the reference loop. What makes it fast:
- `KVCacheDecoder` writes a decoding step out on the model's weights with few operations and a static cache:
  on a CPU, where a small model's step costs operations rather than arithmetic, that is most of the speed-up
  over `model.generate` or the reference loop;
- `decode_shrinking` (CPU): finished answers leave the batch, a quarter of it at a time, so the remaining steps
  only compute what is still being written;
- `FixedShapeDecoding` (GPU): the batch keeps its shape, so a decoding step is recorded once as a CUDA graph
  and replayed.
"""

from __future__ import annotations

import math
import warnings
import weakref
from typing import ClassVar

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from rlhf_course.engine.sampling import draw, position_ids_from_mask


def supports(model: PreTrainedModel) -> bool:
    """Whether `KVCacheDecoder` computes this model's forward pass: a Llama (`model.model`, rotary positions,
    RMS norms) without biases in its projections. Other models (GPT-2's learned positions, Qwen2's q/k/v
    biases, ...) would be sampled from the wrong distribution here, so they take the reference loop."""
    config = model.config
    return (getattr(config, "model_type", None) == "llama"
            and not getattr(config, "attention_bias", False) and not getattr(config, "mlp_bias", False)
            and hasattr(getattr(model, "model", None), "rotary_emb"))


class KVCacheDecoder:
    """A Llama-style model's forward pass written out for sampling, with a static key/value cache.

    It computes the same logits as `model(...)` (up to float rounding; tested) from the model's own weights,
    read once per rollout (PPO changes them between rollouts) and arranged for one-token steps, where a
    small model's time goes to the number of operations, not to arithmetic:
    - the q, k and v projections are one matrix product, and so are the MLP's gate and up projections;
    - the rotary embedding's `rotate_half` is folded into the weights: rotate_half(x Wᵀ) = x rotate_half(W)ᵀ
      (a permutation and sign flip of W's rows), so the same product also returns the rotated q and k, and
      the rotary embedding is q·cos + q_rot·sin with no reshuffling at run time;
    - the attention scale 1/√head_dim is folded into the query weights;
    - weights are stored transposed (in, out) and contiguous, which a CPU multiplies faster than F.linear's.

    The cache is laid out as fixed slots:

        keys: (layers, B, kv_heads, head_dim, S), values: (layers, B, kv_heads, S, head_dim), S = prompt + answer
        length (keys are stored transposed: on a CPU, q @ keys is then much faster than q @ keysᵀ)
        slot s holds the key/value of column s (the left-padded prompt, then the answer, one slot per step)

    A query at slot s attends to every filled, real (non-pad) slot ≤ s. A step writes one slot in place: no
    cache concatenation and none of the general-purpose bookkeeping of `model.forward`, and with a fixed
    batch the same computation on the same memory every step, which a GPU can replay as a CUDA graph.
    """

    def __init__(self, model: PreTrainedModel, batch_size: int, max_len: int):
        config, body = model.config, model.model
        if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
            raise ValueError("the sampler's decoder handles Llama models without projection biases only")
        self.model = model
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        # the rotary embedding's cos and sin at every position, computed as the model computes them
        inv_freq = body.rotary_emb.inv_freq.float()
        freqs = torch.arange(config.max_position_embeddings, device=inv_freq.device).float()[:, None] * inv_freq
        angles = torch.cat([freqs, freqs], dim=-1)  # (positions, head_dim)
        dtype = body.embed_tokens.weight.dtype
        self.cos = (angles.cos() * body.rotary_emb.attention_scaling).to(dtype)
        self.sin = (angles.sin() * body.rotary_emb.attention_scaling).to(dtype)
        self.eps = config.rms_norm_eps
        with torch.no_grad():
            self.embed = body.embed_tokens.weight.detach()
            self.final_norm = body.norm.weight.detach()
            self.layers = [self._arrange(layer) for layer in body.layers]
        weight = self.embed
        shape = (len(body.layers), batch_size, config.num_key_value_heads, max_len, self.head_dim)
        self.values = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.keys = torch.zeros(shape[:3] + shape[4:] + shape[3:4], dtype=weight.dtype, device=weight.device)
        self.filled = torch.zeros(batch_size, max_len, dtype=torch.bool, device=weight.device)  # real, written slots
        self.kv_groups = self.heads // self.kv_heads

    def _arrange(self, layer) -> dict:
        attention, mlp, d = layer.self_attn, layer.mlp, self.head_dim

        def rotate_half_rows(w, heads):  # the rows that compute rotate_half(x Wᵀ): per head, (-second half, first half)
            w = w.view(heads, 2, d // 2, -1)
            return torch.cat([-w[:, 1], w[:, 0]], dim=1).reshape(heads * d, -1)

        q = attention.q_proj.weight * d**-0.5
        k = attention.k_proj.weight
        qkv = torch.cat([q, k, rotate_half_rows(q, self.heads), rotate_half_rows(k, self.kv_heads),
                         attention.v_proj.weight])
        return {
            "norm": layer.input_layernorm.weight.detach(),
            "qkv": qkv.detach().t().contiguous(),  # (hidden, [q, k, q_rot, k_rot, v])
            "o": attention.o_proj.weight.detach().t().contiguous(),
            "mlp_norm": layer.post_attention_layernorm.weight.detach(),
            "gate_up": torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().t().contiguous(),
            "down": mlp.down_proj.weight.detach().t().contiguous(),
            "act": mlp.act_fn,
        }

    @torch.no_grad()
    def load_weights(self) -> None:
        """Re-read the model's weights into the arranged copies, in place (a recorded CUDA graph reads these
        very buffers). A decoder kept across rollouts needs this: PPO changes the weights between them."""
        for arranged, layer in zip(self.layers, self.model.model.layers, strict=True):
            for name, weight in self._arrange(layer).items():
                if isinstance(weight, torch.Tensor):
                    arranged[name].copy_(weight)

    def select_rows(self, rows: torch.Tensor, length: int) -> None:
        """Keep only batch `rows` (in that order). Only the `length` slots written so far are copied: the
        rest are written before they are ever read (attention only looks at `visible` slots)."""
        keys = self.keys.new_empty(self.keys.shape[0], len(rows), *self.keys.shape[2:])
        keys[..., :length] = self.keys[:, rows, ..., :length]
        values = self.values.new_empty(self.values.shape[0], len(rows), *self.values.shape[2:])
        values[:, :, :, :length] = self.values[:, rows, :, :length]
        self.keys, self.values, self.filled = keys, values, self.filled[rows]

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
        H, KV, d = self.heads, self.kv_heads, self.head_dim
        self.filled.index_copy_(1, slots, real)
        keys_visible = self.filled if visible is None else self.filled[:, :visible]
        if T == 1:  # a decoding step: every filled slot was written before this one (or is this one)
            can_see = keys_visible[:, None, None, :]  # (B, 1, 1, S)
        else:  # (B, 1, T, S): a real slot at or before the query's slot; every query may always see itself
            slot_ids = torch.arange(keys_visible.shape[1], device=slots.device)
            can_see = (keys_visible[:, None, :] & (slot_ids[None, None, :] <= slots[None, :, None])) | (
                slot_ids[None, None, :] == slots[None, :, None])
            can_see = can_see[:, None]
        hidden_slots = ~can_see
        cos, sin = self.cos[position_ids][:, :, None], self.sin[position_ids][:, :, None]  # (B, T, 1, head_dim)

        hidden = F.embedding(input_ids, self.embed).view(B * T, -1)  # (B·T, hidden): one row per token
        for i, w in enumerate(self.layers):
            x = F.rms_norm(hidden, hidden.shape[-1:], w["norm"], self.eps)
            projected = x @ w["qkv"]  # (B·T, [q, k, q_rot, k_rot, v])
            n = (H + KV) * d
            # rotary position embedding on q and k at once: x·cos + rotate_half(x)·sin
            qk = projected[:, :n].view(B, T, H + KV, d) * cos + projected[:, n : 2 * n].view(B, T, H + KV, d) * sin
            q = qk[:, :, :H].transpose(1, 2)  # (B, heads, T, head_dim)
            k = qk[:, :, H:].transpose(1, 2)  # (B, kv_heads, T, head_dim)
            v = projected[:, 2 * n :].view(B, T, KV, d).transpose(1, 2)
            self.keys[i].index_copy_(3, slots, k.transpose(2, 3).to(self.keys.dtype))
            self.values[i].index_copy_(2, slots, v.to(self.values.dtype))
            keys = self.keys[i] if visible is None else self.keys[i, ..., :visible]  # (B, kv_heads, head_dim, S)
            values = self.values[i] if visible is None else self.values[i, :, :, :visible]
            if self.kv_groups > 1:  # grouped-query attention: each key/value head serves several query heads
                keys, values = keys.repeat_interleave(self.kv_groups, 1), values.repeat_interleave(self.kv_groups, 1)
            # attention written out (on a CPU, faster for one query token than the fused kernel); q is pre-scaled
            scores = q @ keys.to(q.dtype)  # (B, heads, T, S)
            weights = scores.float().masked_fill(hidden_slots, -math.inf).softmax(-1).to(q.dtype)
            out = (weights @ values.to(q.dtype)).transpose(1, 2).reshape(B * T, H * d)  # (B·T, heads · head_dim)
            hidden = torch.addmm(hidden, out, w["o"])  # residual + o_proj(out)
            x = F.rms_norm(hidden, hidden.shape[-1:], w["mlp_norm"], self.eps)
            gate, up = (x @ w["gate_up"]).chunk(2, dim=-1)
            hidden = torch.addmm(hidden, w["act"](gate) * up, w["down"])  # residual + MLP
        last = hidden.view(B, T, -1)[:, -1]
        # the model's own head module, so that its forward hooks (tests and benchmarks set EOS odds so) apply
        return self.model.lm_head(F.rms_norm(last, last.shape[-1:], self.final_norm, self.eps))  # (B, V)


def decode_shrinking(model, prompt_ids, prompt_mask, max_new_tokens, temperature, eos_token_id, generator,
                      leave_every: float = 0.25):
    """The CPU loop: finished answers leave the batch. Returns `(response_ids, logprobs, ended)`.

    Dropping rows means copying the whole cache, which costs about as much as a step, so finished rows leave
    once they are `leave_every` of the rows still in the cache; until then they keep being computed and what
    they write after their EOS is cut by the caller.
    """
    device = prompt_ids.device
    B, P = prompt_ids.shape
    response_ids = torch.zeros(B, max_new_tokens, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    decoder = KVCacheDecoder(model, B, P + max_new_tokens)
    # 1.–2. the left-padded prompt at padding-aware positions fills slots 0 … P-1
    logits, next_position = decoder.prefill(prompt_ids, prompt_mask)
    rows = torch.arange(B, device=device)  # the batch row of each row of the cache
    for t in range(max_new_tokens):
        # 3. plain sampling at a temperature; the log-prob is taken from the same distribution.
        uniform = torch.rand(len(rows), generator=generator, device=device, dtype=torch.float64)
        token, token_logprob = draw(logits, temperature, uniform)  # (rows,)
        response_ids[rows, t] = token
        logprobs[rows, t] = token_logprob
        # 4. stop at EOS.
        ended[rows] |= token == eos_token_id
        done = ended[rows]
        finished = int(done.sum())
        if t == max_new_tokens - 1 or finished == len(rows):
            break
        # 5. finished answers leave the batch.
        if finished >= max(1.0, leave_every * len(rows)):
            keep = (~done).nonzero().squeeze(1)
            decoder.select_rows(keep, P + t)
            rows, token, next_position = rows[keep], token[keep], next_position[keep]
        logits = decoder.forward(token[:, None], next_position[:, None], torch.tensor([P + t], device=device),
                                 torch.ones(len(rows), 1, dtype=torch.bool, device=device), visible=P + t + 1)
        next_position = next_position + 1
    return response_ids, logprobs, ended


class FixedShapeDecoding:
    """Decoding for one shape (batch B, prompt length P, N new tokens) on buffers that never move, so that a
    GPU can record a decoding step once as a CUDA graph and replay it for every step of every later call with
    the same shape (PPO samples the same batch size each iteration; prompts are left-padded to a multiple of
    8 so that few prompt lengths occur). On a CPU the same step runs eagerly.

    Everything a step reads or writes is a buffer here: the last token, its position, the cache slot and the
    answer column are counters on the device that the step itself advances, and the randomness of every step
    (one uniform number per row and step, N × B) is drawn from the caller's generator before the first step. Finished
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
        self.uniforms = torch.empty(N, B, device=device, dtype=torch.float64)
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
        uniform = self.uniforms.index_select(0, self.column).squeeze(0)
        token, token_logprob = draw(logits, self.temperature, uniform)
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
        self.decoder.load_weights()  # the model may have been trained since the last call
        self.decoder.filled.zero_()
        self.uniforms.uniform_(generator=generator)
        # 1.–2. the left-padded prompt at padding-aware positions fills slots 0 … P-1
        logits, next_position = self.decoder.prefill(prompt_ids, prompt_mask)
        # 3. the first answer token; the steps write the rest
        token, token_logprob = draw(logits, self.temperature, self.uniforms[0])
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
