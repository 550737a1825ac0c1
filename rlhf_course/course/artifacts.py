"""What one notebook leaves for another, besides checkpoints: named files in `runs/<profile>/artifacts/`.

- `candidates.json` (notebook 03): K SFT answers to each of the ranked train prompts. Notebook 05 has other
  annotators rank the very same answers, so that only the annotator differs.
- `heldout_answers.json` (notebook 03): K SFT answers to each of the held-out test prompts, with their gold
  scores and lengths. Notebook 03 measures its reward model's accuracy on them, notebook 05 every other
  reward model's.

Each is written by `save_<name>` and read by `load_<name>`, which names the notebook to run when it is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlhf_course import world
from rlhf_course.config import Profile
from rlhf_course.engine import models

CANDIDATES = "candidates.json"
HELDOUT_ANSWERS = "heldout_answers.json"


def artifacts_dir(profile_name: str) -> Path:
    return models.runs_dir(profile_name) / "artifacts"


def _save(profile_name: str, name: str, value) -> Path:
    path = artifacts_dir(profile_name) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def _load(profile_name: str, name: str, made_by: str):
    path = artifacts_dir(profile_name) / name
    if not path.exists():
        raise models.CheckpointError(
            f"No {name} at {path}: run notebooks/{made_by}.ipynb first, or "
            f"`python -m rlhf_course run --profile {profile_name} --until {made_by[:2]}`.")
    return json.loads(path.read_text(encoding="utf-8"))


def save_candidates(profile_name: str, items: list[dict]) -> Path:
    """Notebook 03's ranked items, `[{"prompt", "answers", "checkpoint"}]`."""
    return _save(profile_name, CANDIDATES, items)


def load_candidates(profile_name: str) -> list[dict]:
    return _load(profile_name, CANDIDATES, "03_reward_model")


def make_heldout_answers(profile: Profile) -> dict:
    """K SFT answers to each of `profile.reward.heldout_prompts` test prompts (`world.prompt_set("heldout")`),
    with their gold scores and length in tokens, and the index pairs `(a, b)` of every two answers to the same
    prompt. Flat lists: prompt i's answers are rows i·K … (i+1)·K − 1."""
    from rlhf_course.engine.generation import sample_answers

    K = profile.reward.answers_per_prompt
    sft_model, tok, _ = models.load_checkpoint("sft", profile.name)
    prompts = [p for p in world.prompt_set("heldout", profile.reward.heldout_prompts) for _ in range(K)]
    answers = sample_answers(sft_model, tok, prompts, profile.sampling.max_new_tokens, seed=profile.seed + 1,
                             batch_size=200, progress=False)
    pairs = [(g + i, g + j) for g in range(0, len(prompts), K) for i in range(K) for j in range(i + 1, K)]
    return {"prompts": prompts, "answers": answers.texts, "lengths": answers.lengths,
            "gold": [world.gold_score(p, x) for p, x in zip(prompts, answers.texts)],
            "pairs": [list(side) for side in zip(*pairs)]}


def save_heldout_answers(profile_name: str, heldout: dict) -> Path:
    return _save(profile_name, HELDOUT_ANSWERS, heldout)


def load_heldout_answers(profile_name: str) -> dict:
    return _load(profile_name, HELDOUT_ANSWERS, "03_reward_model")


def fingerprint(profile_name: str) -> dict:
    """When each artifact was written (None when missing): a result computed from them is stale once this changes."""
    return {name: (path.stat().st_mtime if (path := artifacts_dir(profile_name) / name).exists() else None)
            for name in (CANDIDATES, HELDOUT_ANSWERS)}
