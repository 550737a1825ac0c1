"""Simulated students: a class of noisy (some careless, some biased) gold annotators, ranking as students do.

For notebook 03's headless run (a demonstration class fills the class folder), the tests and the benchmarks
(`experiments/class_flags.py`, `class_reward.py`). `simulated_class` makes the students; `rank_like_a_student`
ranks one student's share of the class assignment into their file, one append and fsync per ranking, as the
class widget's Submit does.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from rlhf_course.feedback.annotators import (
    GoldAnnotator,
    LengthBiasedAnnotator,
    MoodBiasedAnnotator,
    PositionBiasedAnnotator,
    simulated_store,
)
from rlhf_course.feedback.classroom import class_folder, student_items

STUDENT_TEMPERATURES = (0.03, 0.12)  # each simulated student's own noise, drawn uniformly (notebook 03: 0.05)
CARELESS_TEMPERATURE = 2.0  # clicks without reading: of two answers 0.1 apart in gold, picks the better 51% of the time


def simulated_class(n_students: int, seed: int = 0, n_biased: int = 3, n_careless: int = 0) -> list[GoldAnnotator]:
    """`n_students` simulated students `student-01` …: noisy gold annotators, each with their own temperature
    drawn from `STUDENT_TEMPERATURES`. The last `n_biased` of them have a bias besides (in turn: long answers,
    the answer shown first, cheerful stories; see `annotators`), and the `n_careless` before those click
    almost at random (`CARELESS_TEMPERATURE`)."""
    if n_biased < 0 or n_careless < 0 or n_biased + n_careless > n_students:
        raise ValueError(f"n_biased + n_careless must be between 0 and n_students ({n_students}), "
                         f"not {n_biased} + {n_careless}")
    rng = random.Random(f"class-{seed}")
    biases = [lambda name, s: LengthBiasedAnnotator(bias=0.5, seed=s, name=name),
              lambda name, s: PositionBiasedAnnotator(bias=0.3, seed=s, name=name),
              lambda name, s: MoodBiasedAnnotator("happy", bias=0.3, seed=s, name=name)]
    first_careless, first_biased = n_students - n_biased - n_careless, n_students - n_biased
    students = []
    for number in range(n_students):
        name, student_seed = f"student-{number + 1:02d}", seed * 1000 + number
        temperature = rng.uniform(*STUDENT_TEMPERATURES)
        if number >= first_biased:
            students.append(biases[(number - first_biased) % len(biases)](name, student_seed))
        elif number >= first_careless:
            students.append(GoldAnnotator(CARELESS_TEMPERATURE, seed=student_seed, name=name))
        else:
            students.append(GoldAnnotator(temperature, seed=student_seed, name=name))
    return students


def rank_like_a_student(annotator: GoldAnnotator, class_dir: str | Path | None = None,
                        pause_s: float = 0.0) -> list[dict]:
    """What a student does, done by a simulated one: rank each item of their share in turn and submit it to
    `<class folder>/<name>.jsonl`, as the widget's Submit does (one append and fsync per ranking), carrying on
    after the items already ranked; `pause_s` between rankings (a person takes seconds). Returns the records
    written.

    It calls the store, not the widget: in a notebook every widget a simulated student made would be sent to
    the browser (thousands of messages for a class), and the widget's own path is tested on its own."""
    folder = class_folder(class_dir)
    store = simulated_store(annotator, folder)
    written = []
    for item in student_items(folder, annotator.name):
        if not store.has_ranked(item["prompt"], item["answers"]):
            ranking = annotator.rank(item["prompt"], item["answers"])
            written.append(store.submit(item["prompt"], item["answers"], ranking, item.get("checkpoint", "")))
            time.sleep(pause_s)
    return written
