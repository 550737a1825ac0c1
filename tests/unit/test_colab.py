"""Colab: every notebook carries the link and the install cell, and the cell installs the course in a fresh
Python outside the repository and the notebook goes on (the course's source given as a local clone)."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from rlhf_course.course import colab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_has_the_link_and_installs_first(path):
    notebook = nbformat.read(path, as_version=4)
    assert colab.colab_url(path.name) in notebook.cells[0].source  # under the title
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert first_code.source == colab.INSTALL_CELL, "run `python scripts/colab_cells.py`"
    assert colab.INSTALL_TAG in first_code.metadata.get("tags", [])


def test_the_link_opens_the_notebook_from_the_repository():
    assert colab.colab_url("04_ppo.ipynb") == (
        "https://colab.research.google.com/github/" + colab.REPOSITORY.removeprefix("https://github.com/")
        + "/blob/main/notebooks/04_ppo.ipynb")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a clone")
def test_the_install_cell_sets_up_the_course_in_a_fresh_python(tmp_path):
    """As on Colab: a Python that has torch, transformers … (this environment's packages stand in for Colab's)
    but not the course. Notebook 00's install cell clones the course (from this repository's committed state),
    pip-installs it, and the next cell imports it and starts."""
    python = tmp_path / "fresh" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "fresh")], check=True)
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    # Colab's preinstalled packages: this environment's site-packages as a plain path (its own .pth files,
    # among them the course's editable install, are not read from there: the course is not importable).
    Path(fresh_site, "colab_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    check = subprocess.run([str(python), "-c", "import importlib.util; print(importlib.util.find_spec('rlhf_course'))"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert check.stdout.strip() == "None", check.stdout + check.stderr

    cells = [c.source for c in nbformat.read(ROOT / "notebooks" / "00_introduction.ipynb", as_version=4).cells
             if c.cell_type == "code"]
    script = "\n".join([cells[0], "import rlhf_course", "print('course at', rlhf_course.__file__)", cells[1]])
    work = tmp_path / "content"  # Colab's working folder
    work.mkdir()
    env = {**os.environ, "RLHF_COURSE_SOURCE": str(ROOT), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(python), "-c", script], cwd=work, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"course at {work / 'rlhf-course' / 'rlhf_course' / '__init__.py'}" in result.stdout
    assert "Notebook 00 · Introduction" in result.stdout
    # run again, as a second notebook on the same machine: the clone is reused, the course imports at once
    again = subprocess.run([str(python), "-c", script], cwd=work, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0 and "Notebook 00" in again.stdout, again.stderr[-3000:]


def test_the_readme_links_every_notebook_to_colab():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"]({colab.colab_url(path.name)})" in readme, path.name
