"""Where the course keeps what it makes: the repository, and `runs/<profile>` with its checkpoints.

No torch here, so that the light parts (the preference store, the command line's checks) can find their
files without importing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rlhf_course.config import base_model_source, course_seed


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def runs_dir(profile_name: str) -> Path:
    """Where a profile's run lives: `$RLHF_RUNS_DIR/<profile>` or `<repo>/runs/<profile>`, with `-seed<N>` after
    the profile's name for a course seed N other than 0 (`RLHF_SEED`), so that two seeds never share checkpoints,
    and the name of `RLHF_BASE_MODEL` after that when it is set."""
    root = os.environ.get("RLHF_RUNS_DIR")
    seed = course_seed()
    name = profile_name + (f"-seed{seed}" if seed else "")
    if base_model_source():  # another base model: another run, never mixed with the course's own checkpoints
        name += "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base_model_source().rstrip("/")).name)
    return (Path(root) if root else repo_root() / "runs") / name


def checkpoint_dir(phase: str, profile_name: str) -> Path:
    return runs_dir(profile_name) / "checkpoints" / phase
