"""What every notebook does first: pick the profile, fix the seeds, say what will happen and how long it takes."""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass

from rlhf_course.config import Profile, get_profile
from rlhf_course.outline import BY_NUMBER


@dataclass
class Session:
    """The context of one notebook run: its profile, device and when it started."""

    notebook: str
    profile: Profile
    device: "torch.device"  # noqa: F821
    started: float

    def elapsed(self) -> float:
        """Seconds since the notebook's first cell: the phase's `wall_s` in the report."""
        return time.perf_counter() - self.started


def start(notebook: str, seed: int | None = None) -> Session:
    """Set up a notebook: offline Hugging Face, seeds, and a printout of profile, seed, device, the number format
    training computes in, and the expected time.

    `seed` overrides `RLHF_SEED` for this kernel (and for the checkpoints' folder, `runs/<profile>-seed<N>`)."""
    # A stray Hub call fails in a second instead of hanging for a minute on machines without internet.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # e.g. "Writing model shards": noise at this size
    if seed is not None:
        os.environ["RLHF_SEED"] = str(seed)  # so that every later get_profile() and runs_dir() agree
    profile = get_profile()
    random.seed(profile.seed)
    torch.manual_seed(profile.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    minutes = profile.expected_minutes.get(notebook)
    print(f"Notebook {notebook} · {BY_NUMBER[notebook].title if notebook in BY_NUMBER else ''}")
    print(f"  profile : {profile.name} ({profile.description})  — set RLHF_PROFILE to change")
    print(f"  seed    : {profile.seed}  — set RLHF_SEED (or `run --seed N`) for another run of the same experiment")
    print(f"  device  : {device.type} ({where}); torch {torch.__version__}, Python {platform.python_version()}")
    from rlhf_course.engine.precision import (
        training_precision,  # here, like torch: `course` itself stays light to import
    )

    numbers = training_precision(device)
    print(f"  numbers : {numbers.name} ({numbers.reason})  — set RLHF_PRECISION to change")
    if minutes is not None:
        print(f"  expected: about {minutes:g} min on this profile's reference machine")
    return Session(notebook, profile, device, time.perf_counter())


def is_headless() -> bool:
    """True when no person is at the notebook (the runner, nbval, CI): widgets are then driven by code."""
    return os.environ.get("RLHF_HEADLESS") == "1"
