"""A class ranks together: one shared folder, an assignment of who ranks what, and the instructor's view.

The class folder is any folder every student can write to: a shared volume on JupyterHub, a network drive,
a synced folder. Set it once with the environment variable `RLHF_CLASS_DIR` (or pass `class_dir=`). It holds

    assignment.json    which items (a prompt and its K answers) each student ranks; written by the instructor
    <student>.jsonl    each student's rankings, appended by `preference_store.PreferenceStore` as they submit

The workflow (book page "Ranking as a class"):

    assignment = classroom.make_assignment(items, ["ana", "ben", ...], rankings_each=25)   # the instructor
    classroom.write_assignment(class_dir, assignment)
    classroom.student_widget()         # each student: type your name, Start, rank your share
    classroom.ClassView()              # the instructor: Refresh shows counts, agreement and who is far off
    classroom.class_summary()          # the same numbers as a plain object (tests, scripts)

Why it is built this way:
- Every item is ranked by at least two students and a few by everyone, so agreement can be measured; a
  student's share is fixed by the assignment, so a restarted notebook carries on where it stopped.
- Each student appends only to their own file, so no two people ever write one file, and the instructor
  reads without a lock. That is why a network drive works although `flock` may not protect files there
  (`preference_store`): the one writer per file is the student (two tabs of one student still take turns).
- Human rankings are never overwritten or dropped: the store only appends, a new assignment keeps the old
  one beside it, and the view counts rankings of items no longer assigned in their own column.

Agreement is Krippendorff's α (`krippendorff_alpha`), nominal, over every answer pair's preference: the
unit is (item, answer pair), each student who ranked the item gives it the label +1 (first answer above),
−1 (below) or 0 (tie). That is the unit a reward model learns from. For two students who rate every unit, α
is Scott's π (notebook 03's Cohen's κ with the two students' label frequencies pooled) with a small-sample
correction; α also takes any number of raters, each rating only some units.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import os
import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import ipywidgets as widgets

from .annotators import (
    GoldAnnotator,
    LengthBiasedAnnotator,
    MoodBiasedAnnotator,
    PositionBiasedAnnotator,
    simulated_store,
)
from .preference_store import (
    Problem,
    effective_records,
    item_key,
    preference_files,
    read_preference_file,
    validate_annotator_name,
    validate_item,
)
from .rankings import Ranking, preference_labels, ranking_to_pairs
from .widgets import RankingWidget
from .world import gold_score

CLASS_DIR_VARIABLE = "RLHF_CLASS_DIR"
ASSIGNMENT_FILE = "assignment.json"
ASSIGNMENT_FORMAT = "rlhf-course class assignment"


class ClassroomError(ValueError):
    """A class folder, assignment or student name that cannot be used; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# The class folder
# --------------------------------------------------------------------------------------------------


def class_folder(class_dir: str | Path | None = None) -> Path:
    """`class_dir` if given, else `$RLHF_CLASS_DIR`; a `ClassroomError` when neither is set."""
    value = class_dir if class_dir is not None else os.environ.get(CLASS_DIR_VARIABLE, "").strip()
    if not value:
        raise ClassroomError(
            f"no class folder: set {CLASS_DIR_VARIABLE} to a folder every student can write to (a shared volume "
            "on JupyterHub, a network drive), or pass class_dir="
        )
    return Path(value).expanduser()


# --------------------------------------------------------------------------------------------------
# The assignment: who ranks which items
# --------------------------------------------------------------------------------------------------


def items_needed(n_students: int, rankings_each: int, everyone_ranks: int, raters_per_item: int) -> int:
    """How many items an assignment uses: the `everyone_ranks` items all students rank, plus enough items for
    the other rankings when each of them is ranked by `raters_per_item` students:
    everyone_ranks + ⌈n_students · (rankings_each − everyone_ranks) / raters_per_item⌉."""
    return everyone_ranks + math.ceil(n_students * (rankings_each - everyone_ranks) / raters_per_item)


def _check_students(students: Sequence[str]) -> list[str]:
    """The students' names if each can be a file name and no two would be one file; else a `ClassroomError`."""
    try:
        names = [validate_annotator_name(name) for name in students]
    except ValueError as error:
        raise ClassroomError(f"in the list of students: {error}") from None
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen:
            other = seen[name.casefold()]
            raise ClassroomError(f"student {name!r} is listed twice" if other == name else
                                 f"students {other!r} and {name!r} differ only in case: on many shared drives "
                                 "they would be one file; tell them apart another way")
        seen[name.casefold()] = name
    return names


def make_assignment(items: list[dict], students: Sequence[str], rankings_each: int = 25, everyone_ranks: int = 5,
                    raters_per_item: int = 2, seed: int = 0) -> dict:
    """Which items each student ranks: the first `everyone_ranks` items go to everyone, and each further item
    to the `raters_per_item` students with the fewest items so far (ties broken at random with `seed`), so
    loads differ by at most one and each student shares items with many others, not one fixed partner.

    Uses the first `items_needed(...)` items (`{"prompt", "answers", "checkpoint"}`); each student ranks
    `rankings_each` items, or one more where the numbers do not divide evenly. Returns the JSON-ready dict
    `write_assignment` saves: `{"format", "created", "items": [{"id", "prompt", "answers", "checkpoint"}],
    "everyone": [ids], "students": {name: [ids, in the order they are ranked]}}`.
    """
    names = _check_students(students)
    if len(names) < 2:
        raise ClassroomError(f"a class assignment needs at least 2 students to measure agreement, got {len(names)}")
    if not 2 <= raters_per_item <= len(names):
        raise ClassroomError(f"raters_per_item must be between 2 and the number of students ({len(names)}), "
                             f"not {raters_per_item}: every item is ranked by at least two students")
    if not 0 <= everyone_ranks <= rankings_each or rankings_each < 1:
        raise ClassroomError(f"need 0 <= everyone_ranks <= rankings_each and rankings_each >= 1, got "
                             f"everyone_ranks={everyone_ranks}, rankings_each={rankings_each}")
    needed = items_needed(len(names), rankings_each, everyone_ranks, raters_per_item)
    if len(items) < needed:
        raise ClassroomError(
            f"{len(names)} students × {rankings_each} rankings each need {needed} items ({everyone_ranks} ranked by "
            f"everyone, the others by {raters_per_item} students each), but only {len(items)} were given"
        )
    chosen, keys = [], {}
    for number, item in enumerate(items[:needed]):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"an item is a dict {{'prompt', 'answers', 'checkpoint'}}, not {type(item).__name__}")
            validate_item(item.get("prompt"), item.get("answers"))
        except ValueError as error:
            raise ClassroomError(f"item {number}: {error}") from None
        key = item_key(item["prompt"], item["answers"])
        if key in keys:  # one student's two rankings of it would look like one ranking submitted twice
            raise ClassroomError(f"item {number} repeats item {keys[key]} (same prompt, same answers)")
        keys[key] = number
        chosen.append({"id": f"item-{number:04d}", "prompt": item["prompt"], "answers": list(item["answers"]),
                       "checkpoint": item.get("checkpoint", "")})
    everyone = [item["id"] for item in chosen[:everyone_ranks]]
    shares = {name: list(everyone) for name in names}  # the shared items first: agreement is there early
    rng = random.Random(f"class-assignment-{seed}")
    for item in chosen[everyone_ranks:]:
        least_loaded = sorted(names, key=lambda name: (len(shares[name]), rng.random()))
        for name in least_loaded[:raters_per_item]:
            shares[name].append(item["id"])
    return {"format": ASSIGNMENT_FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "items": chosen, "everyone": everyone, "students": shares}


def validate_assignment(assignment: object) -> dict:
    """The assignment if it is well formed; otherwise a `ClassroomError` saying what is wrong in it."""
    if not isinstance(assignment, dict) or assignment.get("format") != ASSIGNMENT_FORMAT:
        raise ClassroomError(f"not a class assignment (no \"format\": \"{ASSIGNMENT_FORMAT}\")")
    items, students = assignment.get("items"), assignment.get("students")
    if not isinstance(items, list) or not items:
        raise ClassroomError("\"items\" must be a non-empty list of {\"id\", \"prompt\", \"answers\"}")
    ids = set()
    for number, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item["id"] in ids:
            raise ClassroomError(f"item {number} has no \"id\" of its own")
        try:
            validate_item(item.get("prompt"), item.get("answers"))
        except ValueError as error:
            raise ClassroomError(f"item {number} ({item['id']}): {error}") from None
        ids.add(item["id"])
    if not isinstance(students, dict) or not students:
        raise ClassroomError("\"students\" must map each student's name to the ids of their items")
    _check_students(list(students))
    for name, share in students.items():
        if not isinstance(share, list) or not share:
            raise ClassroomError(f"student {name!r} has no list of item ids")
        unknown = [item_id for item_id in share if item_id not in ids]
        if unknown:
            raise ClassroomError(f"student {name!r} is given item {unknown[0]!r}, which is not in \"items\"")
        twice = [item_id for item_id in set(share) if share.count(item_id) > 1]
        if twice:
            raise ClassroomError(f"student {name!r} is given item {twice[0]!r} twice")
    return assignment


def assignment_path(class_dir: str | Path | None = None) -> Path:
    return class_folder(class_dir) / ASSIGNMENT_FILE


def write_assignment(class_dir: str | Path | None, assignment: dict, replace: bool = False) -> Path:
    """Write `assignment.json` atomically: a temporary file in the same folder, fsynced, then `os.replace`,
    so a student's notebook reads the old assignment or the new one, never half of one.

    An existing assignment is replaced only with `replace=True` (students may be ranking it), and is then
    kept beside the new one as `assignment.json.replaced-<time>`; rankings are in the students' files and
    are never touched.
    """
    validate_assignment(assignment)
    path = assignment_path(class_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise ClassroomError(f"{path} already exists and students may be ranking it; pass replace=True to write "
                             "a new one (the old one is kept beside it, and no ranking is lost)")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(assignment, file, ensure_ascii=False, indent=1)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    if path.exists():
        aside = path.with_name(f"{path.name}.replaced-{datetime.now():%Y%m%d-%H%M%S-%f}")
        aside.write_bytes(path.read_bytes())
    os.replace(temporary, path)
    return path


def load_assignment(class_dir: str | Path | None = None) -> dict:
    """The class's assignment; one `ClassroomError` line for a missing, unreadable or corrupt file."""
    path = assignment_path(class_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClassroomError(f"no assignment in {path.parent}: the instructor writes {path.name} there with "
                             "classroom.write_assignment (is the class folder right?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ClassroomError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        assignment = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClassroomError(f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno}); "
                             "the instructor should write the assignment again") from None
    try:
        return validate_assignment(assignment)
    except ClassroomError as error:
        raise ClassroomError(f"{path}: {error}; the instructor should write the assignment again") from None


def student_items(class_dir: str | Path | None, name: str) -> list[dict]:
    """The items `name` ranks, in order; a `ClassroomError` naming the assignment when `name` is not in it."""
    assignment = load_assignment(class_dir)
    name = validate_annotator_name(name)
    if name not in assignment["students"]:
        close = difflib.get_close_matches(name, assignment["students"], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "check the spelling, or ask the instructor to add you"
        raise ClassroomError(f"{name!r} is not in the class assignment {assignment_path(class_dir)} "
                             f"({len(assignment['students'])} students): {hint}")
    by_id = {item["id"]: item for item in assignment["items"]}
    return [by_id[item_id] for item_id in assignment["students"][name]]


def student_widget(class_dir: str | Path | None = None, annotator: str | None = None,
                   source: str = "human") -> RankingWidget:
    """The ranking widget of a class: Start loads the student's share of the assignment and writes their
    rankings to `<class folder>/<name>.jsonl`; a student who comes back carries on where they stopped."""
    folder = class_folder(class_dir)
    return RankingWidget(lambda name: student_items(folder, name), store_folder=folder, annotator=annotator,
                         source=source)


# --------------------------------------------------------------------------------------------------
# Simulated students (for the headless notebook, the tests and the benchmark)
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Agreement (pure functions)
# --------------------------------------------------------------------------------------------------


def _ordinal_distance(n_by_value: dict, c, k) -> float:
    """Krippendorff's ordinal δ²(c, k) = (Σ_{g from c to k} n_g − (n_c + n_k) / 2)², g over the values used."""
    low, high = min(c, k), max(c, k)
    between = sum(n for value, n in n_by_value.items() if low <= value <= high)
    return (between - (n_by_value[c] + n_by_value[k]) / 2) ** 2


def krippendorff_alpha(units: Iterable[Sequence], level: str = "nominal") -> float:
    """Krippendorff's α: agreement of any number of raters, corrected for chance, with missing ratings.

    `units`: for each unit (a thing rated), the values of the raters who rated it (missing ones left out).
    Units with fewer than two values are not pairable and are left out. With the coincidences
    o_ck = Σ_u (ordered pairs of values (c, k) in unit u from different raters) / (m_u − 1),
    n_c = Σ_k o_ck and n = Σ_c n_c:

        α = 1 − D_o / D_e,   D_o = (1/n) Σ_c Σ_k o_ck δ²(c, k),   D_e = 1/(n(n − 1)) Σ_c Σ_k n_c n_k δ²(c, k)

    δ²: nominal 1 if c ≠ k else 0; interval (c − k)²; ordinal (Σ_{g from c to k} n_g − (n_c + n_k)/2)².
    α = 1 perfect agreement, 0 what chance gives, < 0 systematic disagreement. NaN when no unit is pairable
    or only one value occurs (nothing to disagree about). Krippendorff (2011), "Computing Krippendorff's
    Alpha-Reliability", Annenberg School for Communication, Departmental Papers 43; its worked example (4
    raters, 12 units, missing values) gives nominal 0.743, ordinal 0.815, interval 0.849 (tested).
    """
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', not {level!r}")
    coincidences: dict[tuple, float] = {}
    for values in units:
        values = list(values)
        if len(values) < 2:
            continue
        counts: dict = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - (c == k))  # ordered pairs from two different raters
                if pairs:
                    coincidences[c, k] = coincidences.get((c, k), 0.0) + pairs / (len(values) - 1)
    n_by_value: dict = {}
    for (c, _k), o in coincidences.items():
        n_by_value[c] = n_by_value.get(c, 0.0) + o
    n = sum(n_by_value.values())
    if len(n_by_value) < 2:
        return math.nan

    def delta(c, k) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return float(c - k) ** 2
        return _ordinal_distance(n_by_value, c, k)

    observed = sum(o * delta(c, k) for (c, k), o in coincidences.items()) / n
    expected = sum(n_by_value[c] * n_by_value[k] * delta(c, k) for c in n_by_value for k in n_by_value) / (n * (n - 1))
    return 1.0 - observed / expected


def majority_label(labels: Iterable[int]) -> int:
    """The majority of +1/0/−1 labels: the sign of their sum (0 when the votes cancel)."""
    total = sum(labels)
    return (total > 0) - (total < 0)


def gold_labels(prompt: str, answers: list[str], min_gold_gap: float = 0.05) -> list[int]:
    """The gold judge's label of each answer pair (i, j), i < j (`rankings.preference_labels` order): +1 when
    gold(i) − gold(j) ≥ `min_gold_gap`, −1 when ≤ −gap, else 0 (too close to tell apart, as in
    `reward.pairwise_accuracy`)."""
    gold = [gold_score(prompt, answer) for answer in answers]
    return [int(gold[i] - gold[j] >= min_gold_gap) - int(gold[j] - gold[i] >= min_gold_gap)
            for i in range(len(answers)) for j in range(i + 1, len(answers))]


def label_agreement(pairs: Iterable[tuple[int, int]]) -> tuple[float, int]:
    """Share of (label, reference) pairs that agree, over those where neither is 0 (a tie or too close);
    `(share, pairs counted)`, NaN when none counts."""
    counted = [a == b for a, b in pairs if a and b]
    return (sum(counted) / len(counted) if counted else math.nan), len(counted)


# --------------------------------------------------------------------------------------------------
# The instructor's numbers
# --------------------------------------------------------------------------------------------------

# Flagged: agreement with the class more than FLAG_BELOW_MEDIAN under the class median, on at least
# MIN_PAIRS_TO_FLAG pairs (25 rankings of 4 answers). Measured on 10 simulated classes of 30 × 25 (notebook 03's
# candidates, benchmarks/class_flags.py): careful students fell at most 0.13 under the median, a careless one
# 0.13-0.27 (9 of 10 flagged). On 60 pairs (10 rankings) one partner's noise alone put 3 of 160 careful students
# more than 0.15 under it.
FLAG_BELOW_MEDIAN = 0.15
MIN_PAIRS_TO_FLAG = 150


def notebook03_pairs(profile=None) -> int:
    """The pairs notebook 03 trains its reward model on: candidate prompts × K(K−1)/2 simulated pairs, plus
    the contrast pairs (tiny profile: 600 × 6 + 2,000 = 5,600)."""
    from .config import get_profile  # a profile only when asked: get_profile may import torch

    config = (profile or get_profile()).reward
    k = config.answers_per_prompt
    return config.candidate_prompts * k * (k - 1) // 2 + config.contrast_pairs


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


def _read_class_rankings(folder: Path, assignment: dict):
    """Per student (file name), their latest ranking of each assignment item, and their counts."""
    item_of_key = {item_key(item["prompt"], item["answers"]): item["id"] for item in assignment["items"]}
    files, problems = preference_files([folder])
    per_student: dict[str, dict] = {}
    for path in files:
        records, file_problems = read_preference_file(path)
        problems += file_problems
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


# --------------------------------------------------------------------------------------------------
# The instructor's view: a widget over class_summary
# --------------------------------------------------------------------------------------------------


def _share(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def summary_html(summary: ClassSummary) -> str:
    """The headline of the view: totals, α and the class's pairs against notebook 03's."""
    started = sum(row.ranked > 0 for row in summary.students)
    scale = summary.pairs / summary.notebook03_pairs if summary.notebook03_pairs else math.nan
    flagged = [row for row in summary.students if row.flagged]
    lines = [
        f"<b>{started} of {len(summary.students)} students</b> have ranked: <b>{summary.rankings} rankings</b> "
        f"({summary.skipped} skipped) → <b>{summary.pairs} pairs</b>, {scale:.0%} of the "
        f"{summary.notebook03_pairs:,} pairs notebook 03's simulated annotator gives.",
        f"Agreement: <b>Krippendorff's α = {_share(summary.alpha)}</b> over {summary.alpha_units} answer pairs ranked "
        f"by two or more students ({summary.items_ranked_twice} of {summary.items} items; 1 = all agree, "
        "0 = chance).",
    ]
    if flagged:
        names = ", ".join(f"{html.escape(row.name)} ({_share(row.vs_class)})" for row in flagged)
        lines.append(f'<span style="color: #b00020">Far below the class (median {_share(summary.class_median)}): '
                     f"{names}</span>")
    if summary.problems:
        lines.append(f'<span style="color: #b00020">{len(summary.problems)} problem(s), e.g. '
                     f"{html.escape(str(summary.problems[0]))}</span>")
    return "<br>".join(lines)


def students_html(summary: ClassSummary) -> str:
    """One row per student and one for the class: what each ranked and how far they agree."""
    header = ["student", "ranked", "skipped", "pairs", "agrees with class", "agrees with gold", ""]
    rows = []
    for row in summary.students:
        note = ("far below the class" if row.flagged else "not in the assignment" if not row.assigned else "")
        if row.other_items:
            note += f" ({row.other_items} of other items)"
        style = ' style="color: #b00020"' if row.flagged else ""
        cells = [html.escape(row.name), f"{row.ranked} / {row.assigned}", row.skipped, row.pairs,
                 _share(row.vs_class), _share(row.vs_gold), note.strip()]
        rows.append(f'<tr data-student="{html.escape(row.name)}"{style}>'
                    + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    gold_pairs = sum(row.vs_gold_pairs for row in summary.students)
    pooled_gold = (sum(row.vs_gold * row.vs_gold_pairs for row in summary.students if row.vs_gold_pairs) / gold_pairs
                   if gold_pairs else math.nan)
    total = ["<b>all</b>", f"<b>{summary.rankings}</b>", summary.skipped, summary.pairs,
             f"median {_share(summary.class_median)}", _share(pooled_gold), f"α {_share(summary.alpha)}"]
    rows.append('<tr data-student="(all)" style="border-top: 1px solid #999">'
                + "".join(f"<td>{cell}</td>" for cell in total) + "</tr>")
    head = "".join(f"<th>{cell}</th>" for cell in header)
    style = "<style>.rlhf-class-students td, .rlhf-class-students th {padding: 1px 10px; text-align: left}</style>"
    return (f'{style}<table class="rlhf-class-students" style="border-collapse: collapse"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


class ClassView:
    """The instructor's view of a class folder: Refresh (or the timer) reads it and shows `class_summary`.

    CSS classes for browser tests: `rlhf-class-refresh`, `rlhf-class-auto` (the timer's checkbox),
    `rlhf-class-summary`, `rlhf-class-table` (rows carry `data-student`), `rlhf-class-status`.
    """

    def __init__(self, class_dir: str | Path | None = None, every_s: float = 10.0, simulated_pairs: int | None = None):
        self.folder = class_folder(class_dir)
        self.every_s = every_s
        self.simulated_pairs = simulated_pairs if simulated_pairs is not None else notebook03_pairs()
        self.summary: ClassSummary | None = None
        self._lock = threading.Lock()  # the button and the timer may refresh at once
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", button_style="primary")
        self.refresh_button.add_class("rlhf-class-refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.auto_box = widgets.Checkbox(value=False, description=f"refresh every {every_s:g} s", indent=False)
        self.auto_box.add_class("rlhf-class-auto")
        self.auto_box.observe(lambda change: self.start_timer() if change["new"] else self.stop_timer(), "value")
        self.summary_label = widgets.HTML()
        self.summary_label.add_class("rlhf-class-summary")
        self.table = widgets.HTML()
        self.table.add_class("rlhf-class-table")
        self.status_label = widgets.HTML()
        self.status_label.add_class("rlhf-class-status")
        self.widget = widgets.VBox([widgets.HBox([self.refresh_button, self.auto_box]), self.status_label,
                                    self.summary_label, self.table])
        self.widget.add_class("rlhf-class-view")
        self.refresh()

    def refresh(self) -> ClassSummary | None:
        """Read the folder again and show the numbers; the summary (None when the folder cannot be used)."""
        with self._lock:
            try:
                summary = class_summary(self.folder, simulated_pairs=self.simulated_pairs)
            except (ClassroomError, OSError) as error:  # no assignment yet, say: say so, keep the last numbers
                self.status_label.value = f'<span style="color: #b00020">error: {html.escape(str(error))}</span>'
                return None
            self.summary = summary
            self.summary_label.value = summary_html(summary)
            self.table.value = students_html(summary)
            self.status_label.value = (f"{html.escape(str(self.folder))} · read at {datetime.now():%H:%M:%S} "
                                       f"in {summary.seconds:.2f} s")
            return summary

    def start_timer(self) -> None:
        """Refresh every `every_s` seconds in a background thread until `stop_timer`."""
        if self._timer and self._timer.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.every_s):
                self.refresh()

        self._timer = threading.Thread(target=loop, name="class-view-timer", daemon=True)
        self._timer.start()

    def stop_timer(self) -> None:
        self._stop.set()
        if self._timer:
            self._timer.join(timeout=self.every_s + 5)
        self.auto_box.value = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
