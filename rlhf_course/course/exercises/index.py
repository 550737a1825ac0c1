"""The book's Exercises page (`book/exercises.md`): every exercise in a table per notebook, then the
"predict, then run" questions. A test keeps the page equal to `index_markdown()`.
"""

from __future__ import annotations

from rlhf_course.course.exercises.checker import EXERCISES
from rlhf_course.course.exercises.predictions import PREDICTIONS


def index_markdown() -> str:
    """The book's page listing every exercise by notebook (`book/exercises.md`; a test keeps it current)."""
    lines = ["# Exercises", "",
             "Every training notebook has exercises: you write the function the phase turns on, and the next cell",
             "checks it at once against the course's own on a few inputs. When yours differs and matches a typical",
             "mistake, the check names it. Where it is cheap the notebook then trains with your function (notebook",
             "01's loss, 02's, 03's Bradley–Terry loss, 06's DPO loss; 04's one update by hand uses all of yours).",
             "In the book each solution is folded away under its exercise.", "",
             "The **student edition** has every solution replaced by a stub that raises `NotImplementedError` with the",
             "task: `python -m rlhf_course exercises --out runs/student` writes it. `python -m rlhf_course run",
             "--notebooks runs/student` stops at the first exercise still to do and says which. Later notebooks",
             "start from checkpoints, never from your functions, so a skipped exercise stops only its own notebook.",
             ""]
    notebook = None
    for ex in sorted(EXERCISES.values(), key=lambda e: e.id):
        if ex.notebook != notebook:
            notebook = ex.notebook
            lines += [f"## Notebook {notebook[:2]} ({notebook[3:].replace('_', ' ')})", "",
                      "| exercise | you write | the check names these mistakes |", "|---|---|---|"]
        mistakes = "<br>".join(hint.replace("|", "\\|") for hint in ex.mistakes)
        lines.append(f"| {ex.id} {ex.title} | {ex.task.replace('|', chr(92) + '|')} | {mistakes} |")
    lines += ["", "## Predict, then run", "",
              "A question before an experiment the notebook runs anyway; write your letter into `my_prediction`, and",
              "the cell after the experiment says which answer the run proved right.", ""]
    lines += [f"- **{item.id}** {item.question}" for item in PREDICTIONS.values()]
    return "\n".join(_tables_spaced(lines)) + "\n"


def _tables_spaced(lines: list[str]) -> list[str]:
    """A blank line after each table (before the next heading)."""
    out = []
    for line in lines:
        if line.startswith("## ") and out and out[-1].startswith("|"):
            out.append("")
        out.append(line)
    return out
