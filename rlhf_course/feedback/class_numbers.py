"""The class's numbers: what each student ranked, how far they agree with the class and the gold judge, and α.

`class_summary` reads the class folder (the assignment and every student's file, each record once however many
files hold it) and returns a `ClassSummary`: per student a `StudentNumbers` row, flagged when far below the
class; for the class, totals, Krippendorff's α and the pairs notebook 03 trains on, for scale.

Agreement is Krippendorff's α (`rankings.krippendorff_alpha`), nominal, over every answer pair's preference:
the unit is (item, answer pair), each student who ranked the item gives it the label +1 (first answer above),
−1 (below) or 0 (tie). That is the unit a reward model learns from. For two students who rate every unit, α
is Scott's π (notebook 03's Cohen's κ with the two students' label frequencies pooled) with a small-sample
correction; α also takes any number of raters, each rating only some units.

Human rankings are never dropped: rankings of items no longer assigned count in their own column, and a file
that is not a plain file of the class folder (a link planted there) is a problem, never read.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlhf_course.feedback.classroom import class_folder, load_assignment
from rlhf_course.feedback.preference_loading import Problem, preference_files, read_preference_files
from rlhf_course.feedback.preference_records import effective_records, item_key
from rlhf_course.feedback.rankings import (
    Ranking,
    krippendorff_alpha,
    label_agreement,
    majority_label,
    preference_labels,
    ranking_to_pairs,
)
from rlhf_course.feedback.safe_files import not_plain_because
from rlhf_course.world import gold_score

# Flagged: agreement with the class more than FLAG_BELOW_MEDIAN under the class median, on at least
# MIN_PAIRS_TO_FLAG pairs (25 rankings of 4 answers). Measured on 10 simulated classes of 30 × 25 (notebook 03's
# candidates, experiments/class_flags.py): careful students fell at most 0.13 under the median, a careless one
# 0.13-0.27 (9 of 10 flagged). On 60 pairs (10 rankings) one partner's noise alone put 3 of 160 careful students
# more than 0.15 under it.
FLAG_BELOW_MEDIAN = 0.15
MIN_PAIRS_TO_FLAG = 150


def notebook03_pairs(profile=None) -> int:
    """The pairs notebook 03 trains its reward model on: candidate prompts × K(K−1)/2 simulated pairs, plus
    the contrast pairs (tiny profile: 600 × 6 + 2,000 = 5,600)."""
    from rlhf_course.config import get_profile  # a profile only when asked: get_profile may import torch

    config = (profile or get_profile()).reward
    k = config.answers_per_prompt
    return config.candidate_prompts * k * (k - 1) // 2 + config.contrast_pairs


def gold_labels(prompt: str, answers: list[str], min_gold_gap: float = 0.05) -> list[int]:
    """The gold judge's label of each answer pair (i, j), i < j (`rankings.preference_labels` order): +1 when
    gold(i) − gold(j) ≥ `min_gold_gap`, −1 when ≤ −gap, else 0 (too close to tell apart, as in
    `reward.pairwise_accuracy`)."""
    gold = [gold_score(prompt, answer) for answer in answers]
    return [int(gold[i] - gold[j] >= min_gold_gap) - int(gold[j] - gold[i] >= min_gold_gap)
            for i in range(len(answers)) for j in range(i + 1, len(answers))]


@dataclass
class StudentNumbers:
    """One student's row of the instructor's view. Agreements are shares of answer pairs (NaN: none yet)."""

    name: str
    assigned: int  # items in their share (0: not in the assignment)
    ranked: int  # items of the assignment they ranked (each counted once)
    skipped: int  # items of the assignment they skipped and did not rank
    other_items: int  # rankings of items not in this assignment (an earlier one): kept, not in the agreement
    repeats: int  # earlier rankings of an item ranked again (the latest counts; none if the store is on local disk)
    pairs: int  # pairs all their rankings give
    vs_class: float  # agreement with the majority of the other students who ranked the same items
    vs_class_pairs: int
    vs_gold: float  # agreement with the gold judge
    vs_gold_pairs: int
    flagged: bool = False  # far below the class: worth a word with them (or a look at their rankings)


@dataclass
class ClassSummary:
    """Everything the instructor's view shows, for one read of the class folder."""

    folder: Path
    students: list[StudentNumbers]
    rankings: int  # effective rankings in all files, every item counted once per student
    skipped: int
    pairs: int  # preference pairs the class's rankings give: what a reward model would train on
    items: int  # items in the assignment
    items_ranked_twice: int  # items ranked by at least two students
    alpha: float  # Krippendorff's α, nominal, over (item, answer pair) units ranked by ≥ 2 students
    alpha_units: int
    class_median: float  # median of the students' agreement with the class
    notebook03_pairs: int  # what notebook 03's simulated annotator gives, for scale
    problems: list[Problem] = field(default_factory=list)  # bad lines or files (the rest still counts)
    seconds: float = 0.0  # how long reading and computing took

    def student(self, name: str) -> StudentNumbers:
        return next(row for row in self.students if row.name == name)


def _plain_preference_files(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The students' files of the class folder (`preference_files`) that are plain files of it; any other (a
    link to a file elsewhere, say: `not_plain_because`) is a problem, not read."""
    files, problems = preference_files([folder])
    plain = []
    for path in files:
        try:
            reason = not_plain_because(os.lstat(path))
        except OSError as error:
            reason = f"not readable ({error.strerror or error})"
        if reason:
            problems.append(Problem(path, 0, f"not read: it is {reason}; move it out of the class folder"))
        else:
            plain.append(path)
    return plain, problems


def _read_class_rankings(folder: Path, assignment: dict):
    """Per student (file name), their latest ranking of each assignment item, and their counts."""
    item_of_key = {item_key(item["prompt"], item["answers"]): item["id"] for item in assignment["items"]}
    files, problems = _plain_preference_files(folder)
    read, read_problems = read_preference_files(files)  # a record in two files (a sync tool's copy) counts once
    problems += read_problems
    per_student: dict[str, dict] = {}
    for path, records in read:
        latest: dict[str, Ranking] = {}
        skipped, other, repeats, pairs = set(), 0, 0, 0
        for record in effective_records(records):
            item_id = item_of_key.get(item_key(record["prompt"], record["answers"]))
            if "skipped" in record:
                skipped.add(item_id)
                continue
            pairs += len(ranking_to_pairs(record["answers"], record["ranking"]))
            if item_id is None:
                other += 1
            else:
                repeats += item_id in latest
                latest[item_id] = record["ranking"]
        per_student[path.stem] = {"latest": latest, "skipped": len(skipped - set(latest) - {None}),
                                  "other": other, "repeats": repeats, "pairs": pairs}
    return per_student, problems


def class_summary(class_dir: str | Path | None = None, flag_below: float = FLAG_BELOW_MEDIAN,
                  min_pairs_to_flag: int = MIN_PAIRS_TO_FLAG, min_gold_gap: float = 0.05,
                  simulated_pairs: int | None = None) -> ClassSummary:
    """Read the class folder and compute the instructor's numbers (what `ClassView` shows).

    Per student: rankings, skips, pairs; agreement with the majority of the *other* students on the same
    items (leaving the student out, else with two raters they would agree with themselves) and with the gold
    judge (`gold_labels`); flagged when their class agreement is `flag_below` under the class median, on at
    least `min_pairs_to_flag` pairs (see `FLAG_BELOW_MEDIAN`). For the class: totals, Krippendorff's α (nominal,
    over (item, pair) units), and the pairs notebook 03 trains on, for scale (`simulated_pairs`, default
    `notebook03_pairs()`).
    """
    started = time.perf_counter()
    folder = class_folder(class_dir)
    assignment = load_assignment(folder)
    items = {item["id"]: item for item in assignment["items"]}
    per_student, problems = _read_class_rankings(folder, assignment)
    names = list(assignment["students"]) + sorted(set(per_student) - set(assignment["students"]))
    empty = {"latest": {}, "skipped": 0, "other": 0, "repeats": 0, "pairs": 0}

    # every student's pair labels per item, and the gold judge's (scored once per item)
    labels: dict[str, dict[str, list[int]]] = {}  # item id → student → labels
    for name in names:
        for item_id, ranking in per_student.get(name, empty)["latest"].items():
            labels.setdefault(item_id, {})[name] = preference_labels(ranking, len(items[item_id]["answers"]))
    gold = {item_id: gold_labels(items[item_id]["prompt"], items[item_id]["answers"], min_gold_gap)
            for item_id in labels}

    rows = []
    for name in names:
        seen = per_student.get(name, empty)
        with_class, with_gold = [], []
        for item_id in seen["latest"]:
            own, others = labels[item_id][name], [v for k, v in labels[item_id].items() if k != name]
            with_gold += zip(own, gold[item_id])
            if others:
                with_class += zip(own, [majority_label(votes) for votes in zip(*others)])
        vs_class, class_pairs = label_agreement(with_class)
        vs_gold, gold_pairs = label_agreement(with_gold)
        rows.append(StudentNumbers(name, len(assignment["students"].get(name, [])), len(seen["latest"]),
                                   seen["skipped"], seen["other"], seen["repeats"], seen["pairs"],
                                   vs_class, class_pairs, vs_gold, gold_pairs))
    compared = [row.vs_class for row in rows if row.vs_class_pairs]
    median = statistics.median(compared) if compared else math.nan
    for row in rows:
        row.flagged = row.vs_class_pairs >= min_pairs_to_flag and row.vs_class < median - flag_below

    shared = [by_student for by_student in labels.values() if len(by_student) >= 2]
    units = [list(pair_votes) for by_student in shared for pair_votes in zip(*by_student.values())]
    return ClassSummary(
        folder=folder, students=rows,
        rankings=sum(row.ranked + row.other_items for row in rows), skipped=sum(row.skipped for row in rows),
        pairs=sum(row.pairs for row in rows), items=len(items), items_ranked_twice=len(shared),
        alpha=krippendorff_alpha(units), alpha_units=len(units), class_median=median,
        notebook03_pairs=notebook03_pairs() if simulated_pairs is None else simulated_pairs,
        problems=problems, seconds=time.perf_counter() - started,
    )
