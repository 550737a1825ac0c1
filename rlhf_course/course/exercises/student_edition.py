"""The student edition: the notebooks with every solution region (`# BEGIN SOLUTION 03.1` ... `# END SOLUTION`)
replaced by a stub that raises `NotImplementedError` with the exercise's task, and their outputs cleared.
"""

from __future__ import annotations

import re
from pathlib import Path

from rlhf_course.course.exercises.checker import EXERCISES

SOLUTION = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION (?P<id>\d\d\.\d+)\n.*?^[ \t]*# END SOLUTION\n?",
                      re.MULTILINE | re.DOTALL)


def stub_solutions(source: str) -> str:
    """A code cell's source with every solution region replaced by a stub raising the exercise's task."""

    def stub(match: re.Match) -> str:
        ex = EXERCISES[match["id"]]
        message = f"Exercise {ex.id}: {ex.task}"
        return f"{match['indent']}raise NotImplementedError({message!r})\n"

    return SOLUTION.sub(stub, source)


def student_edition(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student edition of `notebooks` into `out`: every solution stubbed, outputs cleared."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = stub_solutions(cell.source)
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


def exercises_in(source: str) -> list[str]:
    """The ids of the solution regions in a notebook cell's source."""
    return [m["id"] for m in SOLUTION.finditer(source)]
