"""Write Colab's pieces into every course notebook: the "Open in Colab" link under the title and the install
cell as the first code cell (`rlhf_course/course/colab.py`). Safe to run again: it replaces what an earlier run wrote.

    python scripts/colab_cells.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlhf_course.course import colab  # noqa: E402


def is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and colab.INSTALL_TAG in cell.metadata.get("tags", []) and \
        "RLHF_COURSE_SOURCE" in cell.source


def update(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    earlier = [cell for cell in notebook.cells if is_install_cell(cell)]
    cells = [cell for cell in notebook.cells if not is_install_cell(cell)]
    title = cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), f"{path.name}: no title cell first"
    lines = [line for line in title.source.splitlines() if "[Open in Colab](" not in line]
    title.source = "\n".join([lines[0], "", colab.colab_link(path.name)] + lines[1:]).replace("\n\n\n", "\n\n")
    install = nbformat.v4.new_code_cell(colab.INSTALL_CELL, metadata={"tags": [colab.INSTALL_TAG]})
    if earlier:
        install.id = earlier[0].id  # the same cell, rewritten: no churn in the notebook's diff
    first_code = next(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    cells.insert(first_code, install)
    notebook.cells = cells
    nbformat.write(notebook, path)


if __name__ == "__main__":
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        update(notebook)
        print(f"{notebook.name}: link and install cell written")
