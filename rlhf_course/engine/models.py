"""Build, save and load the course's models as Hugging Face checkpoint folders.

A checkpoint is `runs/<profile>/checkpoints/<phase>/`: the model's `save_pretrained` folder (safetensors),
the tokenizer, and `meta.json` (profile, phase, metrics, wall time, seed). It is written into a temporary
folder and renamed into place at the end, so a crash mid-save never leaves a folder that looks complete.
Loading never unpickles anything: weights come from safetensors only, and no remote code runs. It also
refuses a file that lacks a tensor the model needs (transformers would fill it with random numbers and only
print a note), and turns every broken file into one `CheckpointError` naming the folder and what to run.

Bring your own model: with `RLHF_BASE_MODEL=<hub id or folder>` the `base` checkpoint is that causal LM and
its tokenizer instead of notebook 01's (`import_base_model`, on the first load), in a runs folder of its own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rlhf_course.config import ModelConfig, Profile, base_model_source, get_profile
from rlhf_course.outline import checkpoint_notebook
from rlhf_course.paths import checkpoint_dir, repo_root, runs_dir  # noqa: F401  (re-exported: where checkpoints live)

META_FILE = "meta.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"  # a sharded checkpoint's list of its weight files

# What a broken folder raises while transformers reads it: SafetensorError (a truncated or empty file, a huge
# header), ValueError (bad JSON, invalid UTF-8, no config.json), RecursionError (deeply nested JSON, a
# RuntimeError), RuntimeError (tensors transformers cannot place), OSError (a file missing or unreadable), and
# Type/Attribute/KeyError (JSON of the wrong shape, e.g. a list where an object belongs).
UNREADABLE = (OSError, ValueError, RuntimeError, TypeError, AttributeError, KeyError, SafetensorError)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or unreadable, with what to run to make it."""


class _WeightsError(ValueError):
    """What `load_weights` found wrong with a folder's weight files: a sentence, shown without its type name."""


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
    (staging / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    old = final.with_name(f".{phase}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def how_to_make(phase: str, profile_name: str) -> str:
    """What to run to (re)write checkpoint `phase`: the end of every `CheckpointError` about it."""
    notebook = checkpoint_notebook(phase)
    file = notebook.file if notebook else "the notebook that makes it"
    how = f"run notebooks/{file}.ipynb first, or `python -m rlhf_course run --profile {profile_name}"
    return how + (f" --until {notebook.number}`" if notebook else "`")


def describe(error: BaseException) -> str:
    """An exception in one short line for an error message: its type and the first line of what it says
    (ours, about the tensors, whole: `some` keeps it short)."""
    if isinstance(error, _WeightsError):
        return str(error)
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}"


def read_meta(phase: str, profile_name: str) -> dict:
    """`meta.json` of a checkpoint; `CheckpointError` naming what to run when it is missing or corrupt."""
    folder = checkpoint_dir(phase, profile_name)
    how = how_to_make(phase, profile_name)
    if not folder.is_dir():
        raise CheckpointError(f"No '{phase}' checkpoint for profile '{profile_name}' at {folder}: {how}.")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"The '{phase}' checkpoint at {folder} is incomplete (no {META_FILE}): {how}.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("phase") != phase:
            raise ValueError(f"it does not describe phase '{phase}'")
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested thousands deep
        raise CheckpointError(f"Corrupt {meta_path} ({error}): {how} to write it again.") from None
    return meta


def load_checkpoint(
    phase: str,
    profile_name: str,
    model_class: type = AutoModelForCausalLM,
    device: torch.device | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """Load checkpoint `phase` of a profile: `(model, tokenizer, meta)`, the model in eval mode on `device`.
    With `RLHF_BASE_MODEL` set, the `base` checkpoint is imported from it first if it is not there yet."""
    source = base_model_source()
    if phase == "base" and source and not (checkpoint_dir("base", profile_name) / META_FILE).is_file():
        import_base_model(source, get_profile(profile_name))
    meta = read_meta(phase, profile_name)
    folder = checkpoint_dir(phase, profile_name)
    try:
        model = load_weights(folder, model_class)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except UNREADABLE as error:
        raise CheckpointError(f"The '{phase}' checkpoint at {folder} cannot be loaded ({describe(error)}): "
                              f"{how_to_make(phase, profile_name)} to write it again.") from None
    model.to(device or get_device()).eval()
    return model, tokenizer, meta


def load_weights(source: str | Path, model_class: type = AutoModelForCausalLM) -> PreTrainedModel:
    """`model_class.from_pretrained(source)` that accepts only safetensors holding exactly the model's tensors.

    transformers, left alone, fills a tensor missing from the file with random numbers and only prints a note.
    Here every tensor the model needs must be in the file, with its shape, and nothing else; tied weights (the
    output layer sharing the embedding's) are not counted as missing, as transformers reports. Raises one of
    `UNREADABLE` (`_WeightsError` for a mismatch) without naming the folder: the caller says which and why.
    """
    if Path(source).is_dir():
        refuse_pickled_shards(Path(source))
    model, info = model_class.from_pretrained(
        source, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
        ignore_mismatched_sizes=True,  # so that transformers reports which tensors; they are refused just below
    )
    problems = tensor_problems(info)
    if problems:
        raise _WeightsError("; ".join(problems))
    return model


def refuse_pickled_shards(folder: Path) -> None:
    """A sharded checkpoint's index names its weight files, and transformers hands any `.bin` named there to
    `torch.load` (which unpickles) even with `use_safetensors=True`: accept only safetensors files in `folder`."""
    index_path = folder / SAFETENSORS_INDEX
    if not index_path.is_file():
        return
    index = json.loads(index_path.read_text(encoding="utf-8"))
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise _WeightsError(f"{SAFETENSORS_INDEX} has no weight_map object")
    others = {str(name) for name in weight_map.values()
              if not (isinstance(name, str) and name.endswith(".safetensors") and Path(name).name == name)}
    if others:
        raise _WeightsError(f"{SAFETENSORS_INDEX} names weight files that are not safetensors files in its "
                            f"folder, and the course never unpickles weights: {some(others)}")


def tensor_problems(info: dict) -> list[str]:
    """What transformers' loading report (`output_loading_info=True`) says is wrong with the file's tensors."""
    problems = []
    if info["missing_keys"]:
        problems.append(f"the weights lack tensors the model needs: {some(info['missing_keys'])}")
    if info["unexpected_keys"]:
        problems.append(f"the weights hold tensors the model does not have: {some(info['unexpected_keys'])}")
    if info["mismatched_keys"]:
        shapes = [f"{key} {tuple(in_file)} in the file, {tuple(in_model)} in the model"
                  for key, in_file, in_model in sorted(info["mismatched_keys"])]
        problems.append(f"tensors of the wrong shape: {some(shapes)}")
    return problems


def some(names, shown: int = 5) -> str:
    """A few names of a set, sorted, and how many more: an error message stays one readable line."""
    names = sorted(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def load_reward_model(profile_name: str, device: torch.device | str | None = None):
    """The `reward` checkpoint as `AutoModelForSequenceClassification` (one label)."""
    return load_checkpoint("reward", profile_name, AutoModelForSequenceClassification, device)


# --------------------------------------------------------------------------------------------------
# Bring your own base model (RLHF_BASE_MODEL)
# --------------------------------------------------------------------------------------------------


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Make a Hub tokenizer fit the course, in place; returns the tokens it added (the model must grow to them).

    - a pad token distinct from EOS (masks built from `ids != pad` must keep the EOS; many Hub tokenizers
      have no pad token, or reuse EOS as one);
    - a chat template when it has none: the course's, with its `<|user|>`/`<|assistant|>` markers added as
      special tokens (a base model has never seen them; SFT teaches them, as for the course's own model);
    - prompts padded on the left, so every answer starts at the same column.
    """
    from rlhf_course.world.tokenizer import ASSISTANT, CHAT_TEMPLATE, END_OF_TURN, PAD, SYSTEM, USER

    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token: the course stops every answer at EOS. Set "
                         "tokenizer.eos_token (e.g. to the token that ends a document) before using it")
    added = []
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": PAD})
        added.append(PAD)
    if not getattr(tokenizer, "chat_template", None):
        markers = [USER, ASSISTANT, SYSTEM, END_OF_TURN]
        tokenizer.add_special_tokens({"additional_special_tokens": markers})
        tokenizer.chat_template = CHAT_TEMPLATE
        added += markers
    tokenizer.padding_side = "left"
    tokenizer.init_kwargs["padding_side"] = "left"  # what save_pretrained writes
    return added


def import_base_model(source: str, profile: Profile) -> Path:
    """Load a causal LM and its tokenizer from `source` (Hub id or local folder), fit them to the course
    (`prepare_tokenizer`, embeddings grown to any added tokens) and save them as the `base` checkpoint."""
    start = time.perf_counter()
    try:
        model = load_weights(source, AutoModelForCausalLM)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except UNREADABLE as error:
        raise CheckpointError(
            f"RLHF_BASE_MODEL={source!r} could not be loaded as a causal LM with safetensors weights and a "
            f"tokenizer ({describe(error)}). Offline, give a local folder written by save_pretrained; unset "
            "RLHF_BASE_MODEL for the course's own base model") from None
    added = prepare_tokenizer(tokenizer)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        # new rows start at the mean of the old embeddings (Hewitt 2021), a quiet choice, not a problem to report
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        finally:
            hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    return save_checkpoint(model, tokenizer, "base", profile, metrics={}, wall_s=time.perf_counter() - start,
                           extra={"source": source, "added_tokens": added,
                                  "parameters": count_parameters(model)})


def check_same_tokenizer(policy_tokenizer: PreTrainedTokenizerBase, reward_tokenizer: PreTrainedTokenizerBase):
    """PPO and GRPO feed the policy's token ids to the reward model: both must use the same vocabulary."""
    if (policy_tokenizer.get_vocab() != reward_tokenizer.get_vocab()
            or policy_tokenizer.eos_token_id != reward_tokenizer.eos_token_id
            or policy_tokenizer.pad_token_id != reward_tokenizer.pad_token_id):
        raise ValueError(
            "the reward model uses a different tokenizer from the policy; PPO and GRPO pass the policy's token ids "
            "straight to the reward model, so train the reward model from this policy's SFT checkpoint (03)"
        )
