"""Build, save and load the course's models as Hugging Face checkpoint folders.

A checkpoint is `runs/<profile>/checkpoints/<phase>/`: the model's `save_pretrained` folder (safetensors),
the tokenizer, and `meta.json` (profile, phase, metrics, wall time, seed). It is written into a temporary
folder and renamed into place at the end, so a crash mid-save never leaves a folder that looks complete.
Loading never unpickles anything: weights come from safetensors only, and no remote code runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .config import ModelConfig, Profile, course_seed

# Which notebook makes each checkpoint: the error for a missing checkpoint names it.
PHASE_NOTEBOOKS = {
    "base": "01_base_model",
    "sft": "02_sft",
    "reward": "03_reward_model",
    "ppo": "04_ppo",
    "dpo": "06_dpo",
}
META_FILE = "meta.json"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or unreadable, with what to run to make it."""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def runs_dir(profile_name: str) -> Path:
    """Where a profile's run lives: `$RLHF_RUNS_DIR/<profile>` or `<repo>/runs/<profile>`, with `-seed<N>` after
    the profile's name for a course seed N other than 0 (`RLHF_SEED`), so that two seeds never share checkpoints."""
    root = os.environ.get("RLHF_RUNS_DIR")
    seed = course_seed()
    return (Path(root) if root else repo_root() / "runs") / (profile_name + (f"-seed{seed}" if seed else ""))


def checkpoint_dir(phase: str, profile_name: str) -> Path:
    return runs_dir(profile_name) / "checkpoints" / phase


def get_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised Llama-style causal LM sized by `config`, matching `tokenizer`'s ids."""
    torch.manual_seed(seed)
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_seq_len,
        tie_word_embeddings=True,  # at this size the embedding is most of the model; share it with the output
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        attention_dropout=0.0,  # no dropout anywhere: PPO's log-probs must be deterministic
    )
    return LlamaForCausalLM(llama_config)


def save_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    phase: str,
    profile: Profile,
    metrics: dict,
    wall_s: float,
    extra: dict | None = None,
) -> Path:
    """Write `model` and `tokenizer` as checkpoint `phase` of `profile`, atomically. Returns its folder."""
    final = checkpoint_dir(phase, profile.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{phase}.partial-", dir=final.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    meta = {
        "phase": phase,
        "profile": profile.name,
        "seed": profile.seed,
        "metrics": metrics,
        "wall_s": round(wall_s, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
    # meta.json is written last: a folder without it was never finished.
    (staging / META_FILE).write_text(json.dumps(meta, indent=2))
    old = final.with_name(f".{phase}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_meta(phase: str, profile_name: str) -> dict:
    """`meta.json` of a checkpoint; `CheckpointError` naming what to run when it is missing or corrupt."""
    folder = checkpoint_dir(phase, profile_name)
    notebook = PHASE_NOTEBOOKS.get(phase, "the notebook that makes it")
    how = f"run notebooks/{notebook}.ipynb first, or `python -m rlhf_course run --profile {profile_name}"
    how += f" --until {notebook[:2]}`" if phase in PHASE_NOTEBOOKS else "`"
    if not folder.is_dir():
        raise CheckpointError(f"No '{phase}' checkpoint for profile '{profile_name}' at {folder}: {how}.")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"The '{phase}' checkpoint at {folder} is incomplete (no {META_FILE}): {how}.")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or meta.get("phase") != phase:
            raise ValueError(f"it does not describe phase '{phase}'")
    except ValueError as error:
        raise CheckpointError(f"Corrupt {meta_path} ({error}): {how} to write it again.") from None
    return meta


def load_checkpoint(
    phase: str,
    profile_name: str,
    model_class: type = AutoModelForCausalLM,
    device: torch.device | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """Load checkpoint `phase` of a profile: `(model, tokenizer, meta)`, the model in eval mode on `device`."""
    meta = read_meta(phase, profile_name)
    folder = checkpoint_dir(phase, profile_name)
    model = model_class.from_pretrained(folder, use_safetensors=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model.to(device or get_device()).eval()
    return model, tokenizer, meta


def load_reward_model(profile_name: str, device: torch.device | str | None = None):
    """The `reward` checkpoint as `AutoModelForSequenceClassification` (one label)."""
    return load_checkpoint("reward", profile_name, AutoModelForSequenceClassification, device)
