"""The course's exercises, checked on the spot: you write the function a phase turns on, `check` tells you at once.

Each exercise has an id (`"03.1"`: notebook 03, first exercise), a task, the course's own implementation as the
reference, inputs to try it on, and the typical mistakes, each a wrong implementation with the hint it earns.
`check(id, your_function)` runs yours on every input and compares it with the reference; when it differs and
matches a known mistake, the hint names that mistake (sign flipped, mask forgotten, off-by-one shift, ...).

In the notebooks the solution sits between `# BEGIN SOLUTION` and `# END SOLUTION`; `student_edition` writes
the notebooks with those lines replaced by a stub that raises `NotImplementedError` with the task
(`python -m rlhf_course exercises --out runs/student`). Later notebooks load checkpoints, never your functions,
so an exercise you skip stops only its own notebook.

    checker.py             Exercise, the registry EXERCISES and `exercise(...)`, `check` and how it words a difference
    student_edition.py     the solution regions, and the notebooks written with each replaced by a stub
    cases.py               what several notebooks' inputs are built from (seeded generators, logits and labels)
    notebook_01.py to _07  one catalogue per notebook: each exercise's reference, inputs and catalogued mistakes
    predictions.py         "predict, then run": Prediction, the four questions, `ask` and `reveal`
    index.py               `index_markdown`, the book's Exercises page
"""

# The catalogues register their exercises into EXERCISES when imported: import them all, in id order, so that the
# registry is complete (and ordered) whichever of these names is used.
from rlhf_course.course.exercises import (  # noqa: F401
    notebook_01,
    notebook_02,
    notebook_03,
    notebook_04,
    notebook_05,
    notebook_06,
    notebook_07,
)
from rlhf_course.course.exercises.checker import EXERCISES, ExerciseFailed, ExerciseNotDone, check, diagnose
from rlhf_course.course.exercises.index import index_markdown
from rlhf_course.course.exercises.predictions import ask, reveal
from rlhf_course.course.exercises.student_edition import exercises_in, student_edition, stub_solutions

__all__ = ["EXERCISES", "ExerciseFailed", "ExerciseNotDone", "ask", "check", "diagnose", "exercises_in",
           "index_markdown", "reveal", "student_edition", "stub_solutions"]
