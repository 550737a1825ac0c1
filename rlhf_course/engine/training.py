"""Pieces every training loop shares: the optimiser, the learning-rate schedule, one optimiser step in any
precision, a finite-loss check."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import torch


def cosine_lr(step: int, total_steps: int, warmup_steps: int, max_lr: float, min_ratio: float = 0.1) -> float:
    """Linear warm-up to `max_lr`, then cosine decay to `min_ratio * max_lr` at `total_steps`."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return max_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(
    params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.95), eps: float = 1e-8
) -> torch.optim.AdamW:
    """AdamW; fused on CUDA, where it is faster."""
    params = [p for p in params if p.requires_grad]
    fused = bool(params) and params[0].is_cuda
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps, fused=fused)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                      parameters, max_grad_norm: float = 1.0) -> None:
    """One optimiser step from `loss`, with gradient clipping, in any precision.

    With float16 the loss is scaled before `backward()`, and the gradients unscaled before clipping, so that
    the clipping threshold means the same as in float32; `scaler.step` skips the step if a gradient overflowed.
    A disabled scaler makes this exactly `backward(); clip; step()`.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


def check_finite(loss: torch.Tensor, what: str, step: int) -> None:
    """Stop training on a NaN/inf loss with a message, instead of silently skipping the batch."""
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"{what} became {loss.item()} at step {step}. Lower the learning rate, or check the data of this "
            "batch; the last saved checkpoint is untouched."
        )


def shuffled_batches(n_items: int, batch_size: int, steps: int, seed: int = 0) -> Iterator[list[int]]:
    """`steps` batches of `batch_size` item indices; every item once per epoch, a fresh shuffle each epoch."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(n_items), n_items)
        batch, order = order[:batch_size], order[batch_size:]
        yield batch
