"""Colab: the link that opens a notebook there, and the first cell that installs the course where it is missing.

A notebook opened in Colab (or in any Python where the course was not set up) has no `rlhf_course` to import.
Its first code cell, `INSTALL_CELL`, then clones the course next to the notebook's working folder, installs it
with its dependencies (those of `pyproject.toml`: lower bounds, so Colab's own torch is kept) and puts it on the
running kernel's path. Where the course is installed the cell does nothing. `RLHF_COURSE_SOURCE` replaces the
repository's address (a fork, a branch's clone, or a local folder when testing offline).

`python scripts/colab_cells.py` writes the cell and the "Open in Colab" link into every notebook; a unit test
checks that they are there and current.
"""

from __future__ import annotations

REPOSITORY = "https://github.com/rlhf-course/rlhf-course"  # where the course is published
BRANCH = "main"
INSTALL_TAG = "remove-cell"  # the book leaves the cell out: its readers have nothing to install

INSTALL_CELL = f'''\
# Colab, or a Python without the course: fetch and install it (where the course is installed, nothing happens).
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("rlhf_course") is None:
    folder = os.path.abspath("rlhf-course")
    if not os.path.isdir(folder):
        source = os.environ.get("RLHF_COURSE_SOURCE", "{REPOSITORY}")
        subprocess.run(["git", "clone", "--depth", "1", source, folder], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", folder], check=True)
    sys.path.insert(0, folder)  # this kernel sees the package without a restart'''


def colab_url(notebook_name: str) -> str:
    """The address that opens `notebooks/<notebook_name>` of the published course in Colab."""
    path = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{notebook_name}"


def colab_link(notebook_name: str) -> str:
    """The markdown line under each notebook's title."""
    return (f"[Open in Colab]({colab_url(notebook_name)}) · on Colab, choose a GPU runtime first "
            "(Runtime → Change runtime type)")
