"""The list of notebooks (`outline`) is the one the repository has: files, expected minutes, checkpoints."""

import json
import re

import pytest

from rlhf_course import outline
from rlhf_course.config import PROFILES
from rlhf_course.engine import models
from rlhf_course.paths import repo_root

NOTEBOOK_DIR = repo_root() / "notebooks"


def code_of(notebook: outline.Notebook) -> str:
    cells = json.loads((NOTEBOOK_DIR / f"{notebook.file}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def test_the_outline_lists_every_notebook_in_order():
    on_disk = sorted(path.stem for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    assert [notebook.file for notebook in outline.NOTEBOOKS] == on_disk
    assert all(notebook.file.startswith(notebook.number + "_") for notebook in outline.NOTEBOOKS)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_expects_minutes_for_every_notebook(profile):
    assert sorted(PROFILES[profile].expected_minutes) == [notebook.number for notebook in outline.NOTEBOOKS]


@pytest.mark.parametrize("notebook", outline.NOTEBOOKS, ids=lambda notebook: notebook.number)
def test_each_notebook_starts_its_own_session_and_saves_the_checkpoint_the_outline_says(notebook):
    code = code_of(notebook)
    assert f'course.start("{notebook.number}")' in code
    saved = re.findall(r'save_checkpoint\([^,]+, [^,]+, "([a-z]+)"', code)
    assert saved == ([notebook.writes] if notebook.writes else [])


def test_a_missing_checkpoint_names_the_notebook_that_writes_it():
    assert models.how_to_make("grpo", "tiny") == (
        "run notebooks/07_grpo.ipynb first, or `python -m rlhf_course run --profile tiny --until 07`")
    assert outline.checkpoint_notebook("nothing") is None
    assert models.how_to_make("nothing", "tiny").endswith("--profile tiny`")
