"""Which number format the training loops compute in, decided per device.

The weights always stay float32 (the "master weights"); on a GPU the forward pass runs under autocast in a
16-bit format, which is two to eight times faster there:

- **bfloat16** where the GPU has it natively (Ampere and newer: A100, H100, RTX 30xx/40xx, L4). It has float32's
  range, so losses and gradients cannot overflow it.
- **float16** where it has not (Colab's free T4, V100). Its range ends at 65,504 and small gradients underflow
  to zero, so the loss is multiplied by a large factor before `backward()` and the gradients divided by it again
  before the step: a gradient scaler (`torch.amp.GradScaler`, Micikevicius et al. 2018, *Mixed precision
  training*), which also skips a step whose gradients overflowed and lowers the factor.
- **float32** on a CPU (and Apple's MPS): no autocast, nothing to scale; the course's CPU numbers stay the same.

`RLHF_PRECISION=bfloat16|float16|float32` overrides the choice (e.g. to try the float16 path on a card that has
bfloat16).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

CHOICES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class PrecisionError(ValueError):
    """An `RLHF_PRECISION` the device cannot use."""


@dataclass(frozen=True)
class Precision:
    """How one device trains: the autocast format, and whether gradients need scaling (float16 only)."""

    device_type: str
    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def autocast(self):
        """The forward pass's context: autocast to `dtype`, or nothing in float32."""
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for float16 (disabled, each of its calls passes straight through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def has_native_bfloat16() -> bool:
    """Whether the CUDA device computes in bfloat16 itself (not emulated in float32, as on a T4)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.4 has no `including_emulation` and did not count emulation
        return torch.cuda.is_bf16_supported()


def training_precision(device: torch.device | str) -> Precision:
    """The precision the course trains in on `device` (see the module docstring), or `RLHF_PRECISION`'s."""
    device_type = torch.device(device).type
    forced = os.environ.get("RLHF_PRECISION", "").strip().lower()
    if forced:
        if forced not in CHOICES:
            raise PrecisionError(f"RLHF_PRECISION={forced!r}: choose one of {', '.join(CHOICES)}")
        if forced != "float32" and device_type != "cuda":
            raise PrecisionError(f"RLHF_PRECISION={forced}: 16-bit training is for CUDA GPUs; this device is "
                                 f"{device_type} (unset RLHF_PRECISION to train in float32)")
        return Precision(device_type, CHOICES[forced], "set by RLHF_PRECISION")
    if device_type != "cuda":
        return Precision(device_type, torch.float32, f"no autocast on {device_type}")
    if has_native_bfloat16():
        return Precision(device_type, torch.bfloat16, "the GPU has native bfloat16")
    return Precision(device_type, torch.float16, "the GPU has no native bfloat16: float16 with a gradient scaler")

