"""The two pieces every sampler of the course shares, the plain one (`generation`) and the fast one
(`fast_decoding`): positions that skip left padding, and drawing a token from softmax(logits / temperature).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: 0 at the first real token (pads get 0 too; they are masked)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def draw(logits: torch.Tensor, temperature: float, uniform: torch.Tensor):
    """One token per row from softmax(logits / temperature), and its log-prob: `(token, logprob)`, each (B,).

    Inverse-transform sampling: with u ~ U[0, 1) for each row (`uniform`, (B,), float64), the token is the first whose
    cumulative probability exceeds u. One random number per row, where Gumbel-max and `torch.multinomial`
    draw one per vocabulary entry (on a CPU that alone took longer than a small model's whole step), and no
    host synchronisation. The sum runs in float64 and u is scaled by the total, so rounding can never pick a
    token of probability 0.

    Temperature 0 is greedy decoding: the most likely token, whose log-prob under that point mass is 0.
    """
    if temperature == 0:
        return logits.argmax(dim=-1), torch.zeros(logits.shape[0], device=logits.device)
    logprobs = F.log_softmax(logits.float() / temperature, dim=-1)  # (B, V)
    cumulative = logprobs.exp().cumsum(dim=-1, dtype=torch.float64)  # (B, V)
    threshold = uniform[:, None] * cumulative[:, -1:]  # (B, 1), below the total
    token = torch.searchsorted(cumulative, threshold, right=True).squeeze(1)  # first cumulative > threshold
    return token, logprobs.gather(1, token[:, None]).squeeze(1)
