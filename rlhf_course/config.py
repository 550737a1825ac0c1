"""Profiles: the one place for every size in the course.

A profile is the course's single dial (as `n_layer` is nanoGPT's): `tiny` runs every notebook on two CPU
cores in minutes (it is what CI runs), `gpu` trains bigger models on one GPU. Choose one with the
environment variable `RLHF_PROFILE`; without it the course takes `gpu` when CUDA is present, else `tiny`.
Each phase reads its own section (`profile.pretrain`, `profile.sft`, ...).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-style decoder (see `rlhf_course.models.build_model`)."""

    hidden_size: int = 128  # width of the residual stream
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads (head size = hidden_size / num_heads)
    intermediate_size: int = 512  # width of the MLP
    max_seq_len: int = 256  # longest prompt + answer the model can see
    vocab_size: int = 1024  # BPE vocabulary, special tokens included


@dataclass(frozen=True)
class WorldConfig:
    """How much of the generated world to make (see `rlhf_course.world`)."""

    corpus_documents: int = 18_000  # pretraining documents ("the internet")
    demonstrations: int = 1_500  # generated instruction → answer pairs for SFT (hand-written ones are added)
    seed: int = 0


@dataclass(frozen=True)
class PretrainConfig:
    """Next-token prediction on the corpus (notebook 01)."""

    steps: int = 300
    batch_size: int = 32  # sequences per step
    block_size: int = 128  # tokens per sequence (documents are packed)
    lr: float = 3e-3  # tiny models want high learning rates (feasibility probe)
    warmup_steps: int = 30
    weight_decay: float = 0.1
    heldout_documents: int = 500  # corpus documents kept out of training for the held-out loss


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on demonstrations (notebook 02)."""

    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0


@dataclass(frozen=True)
class SamplingConfig:
    """How every phase samples answers. Evaluation always uses these same settings, so phases compare."""

    temperature: float = 1.0  # plain sampling: no top-k/top-p, so log-probs stay exact (ppo-details §6)
    max_new_tokens: int = 112  # longer answers are cut and count as "never ended"
    eval_prompts: int = 200  # held-out test prompts behind every `gold_mean`
    batch_size: int = 100  # prompts sampled at once
    seed: int = 1234  # the evaluation sampling seed


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    expected_minutes: dict[str, float]  # per notebook, for the first cell's time estimate
    model: ModelConfig = field(default_factory=ModelConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="1M-parameter models on a laptop CPU (what CI runs)",
        expected_minutes={"00": 0.2, "01": 2.0, "02": 1.5},
    ),
    "gpu": Profile(
        name="gpu",
        description="30M-parameter models on one GPU",
        expected_minutes={"00": 0.2, "01": 1.5, "02": 1.0},
        model=ModelConfig(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048, max_seq_len=256),
        world=WorldConfig(corpus_documents=200_000, demonstrations=20_000),
        pretrain=PretrainConfig(steps=1500, batch_size=128, block_size=256, lr=1e-3, warmup_steps=100),
        sft=SFTConfig(epochs=2.0, batch_size=64, lr=3e-4, warmup_steps=50),
        sampling=SamplingConfig(batch_size=200),
    ),
}


class ProfileError(ValueError):
    """An unknown profile name."""


def default_profile_name() -> str:
    """`RLHF_PROFILE` if set, else `gpu` when CUDA is available, else `tiny`."""
    name = os.environ.get("RLHF_PROFILE")
    if name:
        return name
    import torch

    return "gpu" if torch.cuda.is_available() else "tiny"


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name` (default: `default_profile_name()`)."""
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)} (set RLHF_PROFILE)")
    return PROFILES[name]
