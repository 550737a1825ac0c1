"""Tests for rlhf_course.feedback.classroom: the assignment, Krippendorff's α, the instructor's numbers and view, and
students ranking into one class folder from many processes at once.

The concurrency test is the issue's class: 30 students × 25 rankings in 30 processes (3.6 s on 2 cores here);
experiments/class_reward.py runs the same class and trains reward models on it.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time

import krippendorff
import numpy as np
import pytest

from rlhf_course import world
from rlhf_course.feedback import annotators, class_numbers, class_view, classroom, rankings, simulated_students
from rlhf_course.feedback.preference_loading import read_preference_file
from rlhf_course.feedback.preference_store import PreferenceStore

SIMULATED_PAIRS = 5600  # notebook 03's, passed in so that these tests need no profile


def story_items(n: int, k: int = 4, seed: int = 0) -> list[dict]:
    """`n` items of `k` world stories each, with the demonstrators' flaws at their usual rates (like SFT's)."""
    rng = random.Random(seed)
    items = []
    for prompt in world.prompt_set("candidates", n):
        request = world.parse_request(prompt)
        answers = [world.write_story(request, rng, tuple(flaw for flaw, rate in world.DEMONSTRATION_FLAW_RATES.items()
                                                         if rng.random() < rate)) for _ in range(k)]
        items.append({"prompt": prompt, "answers": answers, "checkpoint": "world"})
    return items


def names(n: int) -> list[str]:
    return [f"student-{i + 1:02d}" for i in range(n)]


@pytest.fixture
def class_dir(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    monkeypatch.setenv("RLHF_CLASS_DIR", str(folder))
    return folder


# ---- the class folder and the assignment ---------------------------------------------------------------


def test_the_class_folder_comes_from_the_setting_or_the_argument(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_CLASS_DIR", str(tmp_path / "a"))
    assert classroom.class_folder() == tmp_path / "a"
    assert classroom.class_folder(tmp_path / "b") == tmp_path / "b"
    monkeypatch.delenv("RLHF_CLASS_DIR")
    with pytest.raises(classroom.ClassroomError, match="no class folder: set RLHF_CLASS_DIR"):
        classroom.class_folder()
    with pytest.raises(classroom.ClassroomError, match="no class folder"):
        classroom.student_widget()


def test_every_item_is_ranked_by_two_students_and_a_few_by_everyone():
    items = story_items(320)
    assignment = classroom.make_assignment(items, names(30), rankings_each=25, everyone_ranks=5, seed=1)
    shares = assignment["students"]
    assert len(assignment["items"]) == classroom.items_needed(30, 25, 5, 2) == 305
    assert {len(share) for share in shares.values()} == {25}
    raters = {item["id"]: [name for name, share in shares.items() if item["id"] in share]
              for item in assignment["items"]}
    assert assignment["everyone"] == [item["id"] for item in assignment["items"][:5]]
    assert all(len(raters[item_id]) == 30 for item_id in assignment["everyone"])
    assert all(len(who) == 2 for item_id, who in raters.items() if item_id not in assignment["everyone"])
    # overlap with many classmates, not one fixed partner: agreement is measured across the class
    partners = {name: {other for item_id in share[5:] for other in raters[item_id]} - {name}
                for name, share in shares.items()}
    assert min(len(p) for p in partners.values()) >= 10
    assert [item["prompt"] for item in assignment["items"]] == [item["prompt"] for item in items[:305]]
    again = classroom.make_assignment(items, names(30), rankings_each=25, everyone_ranks=5, seed=1)
    other_seed = classroom.make_assignment(items, names(30), rankings_each=25, everyone_ranks=5, seed=2)
    assert again["students"] == shares and other_seed["students"] != shares


def test_uneven_numbers_give_some_students_one_more():
    assignment = classroom.make_assignment(story_items(30, k=3), names(7), rankings_each=6, everyone_ranks=1)
    loads = sorted(len(share) for share in assignment["students"].values())
    assert len(assignment["items"]) == 1 + math.ceil(7 * 5 / 2) == 19
    assert loads == [6] * 6 + [7] and sum(loads) == 1 * 7 + 18 * 2


@pytest.mark.parametrize("students, kwargs, n_items, message", [
    (["ana"], {}, 40, "at least 2 students"),
    (["ana", "ben", "ana"], {}, 40, "'ana' is listed twice"),
    (["ana", "Ana"], {}, 40, "differ only in case"),
    (["ana", "../ben"], {}, 40, "annotator name '../ben' is not allowed"),
    (["ana", "ben"], {"raters_per_item": 1}, 40, "raters_per_item must be between 2 and the number of students"),
    (["ana", "ben"], {"raters_per_item": 3}, 40, "raters_per_item must be between 2"),
    (["ana", "ben"], {"rankings_each": 3, "everyone_ranks": 4}, 40, "everyone_ranks <= rankings_each"),
    (["ana", "ben", "cy"], {"rankings_each": 25}, 30, r"3 students × 25 rankings each need 35 items .* only 30"),
])
def test_bad_assignment_input_gets_one_clear_message(students, kwargs, n_items, message):
    with pytest.raises(classroom.ClassroomError, match=message):
        classroom.make_assignment(story_items(n_items, k=2), students, **kwargs)


def test_bad_items_are_named_by_number():
    items = story_items(6, k=2)
    with pytest.raises(classroom.ClassroomError, match="item 2: a ranking needs at least two answers"):
        classroom.make_assignment(items[:2] + [{"prompt": "p", "answers": ["one"]}] + items[3:], ["ana", "ben"], 6, 6)
    with pytest.raises(classroom.ClassroomError, match="item 4 repeats item 1"):
        classroom.make_assignment(items[:4] + [items[1]] + items[5:], ["ana", "ben"], 6, 6)


def test_the_assignment_is_written_atomically_and_never_silently_replaced(class_dir):
    first = classroom.make_assignment(story_items(10, k=2), ["ana", "ben"], rankings_each=5)
    path = classroom.write_assignment(None, first)
    assert path == class_dir / "assignment.json" and classroom.load_assignment() == first
    assert sorted(p.name for p in class_dir.iterdir()) == ["assignment.json"]  # no temporary file left
    second = classroom.make_assignment(story_items(10, k=2, seed=1), ["ana", "ben", "cy"], 4, everyone_ranks=2)
    with pytest.raises(classroom.ClassroomError, match="already exists and students may be ranking it"):
        classroom.write_assignment(class_dir, second)
    assert classroom.load_assignment() == first
    classroom.write_assignment(class_dir, second, replace=True)
    assert classroom.load_assignment() == second
    [aside] = [p for p in class_dir.iterdir() if p.name.startswith("assignment.json.replaced-")]
    assert json.loads(aside.read_text(encoding="utf-8")) == first


def test_missing_and_corrupt_assignments_get_one_clear_message(class_dir):
    with pytest.raises(classroom.ClassroomError, match=f"no assignment in {class_dir}: the instructor writes"):
        classroom.student_items(None, "ana")
    class_dir.mkdir()
    path = class_dir / "assignment.json"
    path.write_text('{"format": "rlhf-course class assignment",\n "items": [}', encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match=f"{path}:2: not valid JSON"):
        classroom.load_assignment()
    path.write_text('{"items": []}', encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match=f"{path}: not a class assignment"):
        classroom.load_assignment()
    assignment = classroom.make_assignment(story_items(4, k=2), ["ana", "ben"], 3, everyone_ranks=1)
    assignment["students"]["ana"].append("item-9999")
    path.write_text(json.dumps(assignment), encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match="'ana' is given item 'item-9999', which is not in"):
        classroom.load_assignment()


def test_a_student_not_in_the_assignment_is_told_so(class_dir):
    classroom.write_assignment(class_dir, classroom.make_assignment(story_items(6, k=2), ["Anna", "Ben"], 4,
                                                                    everyone_ranks=2))
    with pytest.raises(classroom.ClassroomError, match="'Ana' is not in the class assignment .* did you mean 'Anna'"):
        classroom.student_items(None, "Ana")
    with pytest.raises(classroom.ClassroomError, match="'Zed' is not in .* ask the instructor to add you"):
        classroom.student_items(None, "Zed")
    assert [item["id"] for item in classroom.student_items(None, "Anna")] == \
        classroom.load_assignment()["students"]["Anna"]


# ---- the student's widget ----------------------------------------------------------------------------------


def test_a_student_ranks_their_share_into_the_class_folder_and_resumes(class_dir):
    classroom.write_assignment(class_dir, classroom.make_assignment(story_items(12, k=3), ["ana", "ben"], 5, 2))
    ui = classroom.student_widget()
    ui.start("zed")
    assert ui.status.startswith("error: 'zed' is not in the class assignment") and ui.store is None
    assert sorted(p.name for p in class_dir.iterdir()) == ["assignment.json"]  # nothing written
    ui.start("ana")
    share = classroom.student_items(None, "ana")
    assert ui.store.path == class_dir / "ana.jsonl" and ui.total == len(share) == 5
    assert ui.items[0]["prompt"] == share[0]["prompt"] and ui.items[0]["checkpoint"] == "world"
    ui.rank([[2], [0], [1]])
    ui.submit()
    ui.skip()
    again = classroom.student_widget(annotator="ana")  # a restarted kernel
    assert again.done == 2 and again.current == 2 and again.status.startswith("welcome back, ana")
    lines = (class_dir / "ana.jsonl").read_text(encoding="utf-8").splitlines()
    [ranking, skip] = [json.loads(line) for line in lines]
    assert ranking["ranking"] == [[2], [0], [1]] and ranking["prompt"] == share[0]["prompt"] and skip["skipped"]


def test_a_missing_assignment_is_shown_in_the_widget(class_dir):
    ui = classroom.student_widget()
    ui.start("ana")
    assert ui.status.startswith("error: no assignment in") and ui.store is None and not class_dir.exists()


# ---- Krippendorff's α ----------------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 raters, 12 units, missing values
KRIPPENDORFF_2011 = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
                     [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]


def units_of(matrix) -> list[list]:
    """Raters × units (None = missing) → per unit the values present (what krippendorff_alpha takes)."""
    return [[value for value in column if value is not None] for column in zip(*matrix)]


def package_alpha(matrix, level: str) -> float:
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    return krippendorff.alpha(reliability_data=data, level_of_measurement=level)


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_on_krippendorffs_worked_example(level, published):
    assert rankings.krippendorff_alpha(units_of(KRIPPENDORFF_2011), level) == pytest.approx(published, abs=5e-4)
    assert rankings.krippendorff_alpha(units_of(KRIPPENDORFF_2011), level) == pytest.approx(
        package_alpha(KRIPPENDORFF_2011, level), abs=1e-12)


def random_ratings(seed: int) -> list[list]:
    """Raters × units: noisy ratings around a true value per unit, missing values in two seeds of three."""
    rng = random.Random(seed)
    n_raters, n_units = rng.randint(2, 8), rng.randint(5, 80)
    values = [[-1, 0, 1], [0, 1, 2, 3, 4], [1, 2]][seed % 3]
    missing = [0.0, 0.2, 0.5][seed % 3]
    truth = [rng.choice(values) for _ in range(n_units)]
    return [[None if rng.random() < missing else (t if rng.random() < 0.6 else rng.choice(values)) for t in truth]
            for _ in range(n_raters)]


@pytest.mark.parametrize("seed", range(9))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_agrees_with_the_krippendorff_package_on_random_data(seed, level):
    matrix = random_ratings(seed)
    assert (seed % 3 == 0) == all(value is not None for row in matrix for value in row)
    assert rankings.krippendorff_alpha(units_of(matrix), level) == pytest.approx(package_alpha(matrix, level),
                                                                                   abs=1e-9)


def test_alpha_edge_cases():
    assert rankings.krippendorff_alpha([[1, 1], [0, 0], [1, 1, 1]]) == 1.0
    assert math.isnan(rankings.krippendorff_alpha([[1, 1], [1, 1]]))  # one value only: nothing to disagree on
    assert math.isnan(rankings.krippendorff_alpha([[1], [0], []]))  # no unit has two ratings
    assert rankings.krippendorff_alpha([[1, 0], [0, 1], [1, 0], [0, 1]]) < 0  # systematic disagreement
    with pytest.raises(ValueError, match="level must be"):
        rankings.krippendorff_alpha([[1, 1]], "ratio")


# ---- the instructor's numbers ----------------------------------------------------------------------------

def clear_items(n: int) -> list[dict]:
    """Items whose three answers the gold judge orders clearly: clean, with spam, with spam and in the wrong mood."""
    items = []
    for number, prompt in enumerate(world.prompt_set("candidates", n)):
        request = world.parse_request(prompt)
        answers = [world.write_story(request, random.Random(number), flaws) for flaws in [(), ("spam",),
                                                                                         ("spam", "wrong_mood")]]
        gold = [world.gold_score(prompt, answer) for answer in answers]
        assert gold[0] - gold[1] >= 0.05 and gold[1] - gold[2] >= 0.05, gold
        items.append({"prompt": prompt, "answers": answers, "checkpoint": "world"})
    return items


def test_the_instructor_numbers_on_hand_made_rankings(class_dir):
    """Three students rank like the gold judge, one the other way round, on 4 items of 3 answers each.

    Every (item, pair) unit then holds the values (+1, +1, +1, −1): per unit o(+,+) = 3·2/3 = 2 and
    o(+,−) = o(−,+) = 3·1/3 = 1, so over U = 12 units n₊ = 3U, n₋ = U, n = 4U, D_o = 2U / 4U = 1/2,
    D_e = 2·3U·U / (4U(4U − 1)), and α = 1 − (4U − 1) / (3U) = −11/36.
    """
    items = clear_items(4)
    students = ["ana", "ben", "cy", "dee"]
    classroom.write_assignment(class_dir, classroom.make_assignment(items, students, rankings_each=4,
                                                                    everyone_ranks=4))
    for name in students:
        store = PreferenceStore(class_dir, name)
        for item in items:
            store.submit(item["prompt"], item["answers"], [[2], [1], [0]] if name == "cy" else [[0], [1], [2]], "world")
    summary = class_numbers.class_summary(simulated_pairs=SIMULATED_PAIRS, min_pairs_to_flag=12)
    assert (summary.rankings, summary.pairs, summary.items, summary.items_ranked_twice) == (16, 48, 4, 4)
    assert summary.alpha == pytest.approx(1 - 47 / 36) and summary.alpha_units == 12
    ana, cy = summary.student("ana"), summary.student("cy")
    assert (ana.ranked, ana.assigned, ana.pairs, ana.vs_class, ana.vs_class_pairs) == (4, 4, 12, 1.0, 12)
    assert (ana.vs_gold, ana.vs_gold_pairs, cy.vs_class, cy.vs_gold) == (1.0, 12, 0.0, 0.0)
    assert summary.class_median == 1.0
    assert [row.name for row in summary.students if row.flagged] == ["cy"]
    assert summary.problems == [] and summary.notebook03_pairs == SIMULATED_PAIRS
    # at the default, 12 pairs are too few to flag anyone (one partner's noise moves agreement that much)
    assert not any(row.flagged for row in class_numbers.class_summary(simulated_pairs=SIMULATED_PAIRS).students)


def test_skips_undos_other_items_extra_files_and_bad_lines_are_counted_apart(class_dir):
    items = clear_items(5)
    classroom.write_assignment(class_dir, classroom.make_assignment(items[:4], ["ana", "ben"], 4, everyone_ranks=4))
    ana, ben, eve = (PreferenceStore(class_dir, name) for name in ("ana", "ben", "eve"))
    for item in items[:3]:
        ana.submit(item["prompt"], item["answers"], [[0], [1], [2]], "world")
    ana.skip(items[3]["prompt"], items[3]["answers"], "world")
    ana.submit(items[4]["prompt"], items[4]["answers"], [[0], [1], [2]], "world")  # not in the assignment
    ben.submit(items[0]["prompt"], items[0]["answers"], [[0, 1], [2]], "world")  # a tie: 2 pairs
    ben.submit(items[1]["prompt"], items[1]["answers"], [[2], [1], [0]], "world")
    ben.undo_last()  # taken back: not counted
    eve.submit(items[0]["prompt"], items[0]["answers"], [[1], [0], [2]], "world")  # not in the assignment's list
    with open(ben.path, "a", encoding="utf-8") as file:
        file.write("{oops\n")
    summary = class_numbers.class_summary(simulated_pairs=SIMULATED_PAIRS)
    rows = {row.name: row for row in summary.students}
    assert list(rows) == ["ana", "ben", "eve"]
    assert (rows["ana"].ranked, rows["ana"].skipped, rows["ana"].other_items, rows["ana"].pairs) == (3, 1, 1, 12)
    assert (rows["ben"].ranked, rows["ben"].pairs, rows["eve"].assigned, rows["eve"].ranked) == (1, 2, 0, 1)
    assert (summary.rankings, summary.skipped, summary.pairs) == (6, 1, 17)
    assert [(p.path.name, p.line_number) for p in summary.problems] == [("ben.jsonl", 4)]
    # item 0 is ranked by ana, ben and eve; α against the package (raters × pair units of that item)
    matrix = [[1, 1, 1], [0, 1, 1], [-1, 1, 1]]
    assert summary.items_ranked_twice == 1 and summary.alpha_units == 3
    assert summary.alpha == pytest.approx(package_alpha(matrix, "nominal"))
    assert rows["ben"].vs_class_pairs == 2 and rows["ben"].vs_class == 1.0  # ana and eve agree on (0,2), (1,2)
    assert "not in the assignment" in class_view.students_html(summary)


@pytest.fixture(scope="module")
def full_class(tmp_path_factory):
    """30 simulated students × 25 rankings (one careless), written the fast way (one write per student)."""
    folder = tmp_path_factory.mktemp("full-class")
    students = simulated_students.simulated_class(30, seed=0, n_careless=1)
    assignment = classroom.make_assignment(story_items(305), [s.name for s in students], rankings_each=25)
    classroom.write_assignment(folder, assignment)
    for student in students:
        store = annotators.simulated_store(student, folder)
        store.submit_many((item["prompt"], item["answers"], student.rank(item["prompt"], item["answers"]), "world")
                          for item in classroom.student_items(folder, student.name))
    return folder, students


def test_the_full_class_refreshes_in_under_two_seconds(full_class):
    folder, students = full_class
    summary = class_numbers.class_summary(folder, simulated_pairs=SIMULATED_PAIRS)
    view = class_view.ClassView(folder, simulated_pairs=SIMULATED_PAIRS)
    started = time.perf_counter()
    view.refresh_button.click()
    seconds = time.perf_counter() - started
    print(f"30 × 25: class_summary {summary.seconds:.3f} s, the view's refresh {seconds:.3f} s")
    assert summary.seconds < 2 and seconds < 2
    assert (summary.rankings, summary.pairs, summary.alpha_units) == (750, 4500, 305 * 6)
    careless = [s.name for s in students if s.temperature == simulated_students.CARELESS_TEMPERATURE]
    assert [row.name for row in summary.students if row.flagged] == careless
    assert "750 rankings" in view.summary_label.value and view.table.value.count("<tr data-student=") == 31


def test_the_view_says_when_there_is_no_assignment_yet_and_refreshes_on_a_timer(class_dir):
    view = class_view.ClassView(simulated_pairs=SIMULATED_PAIRS)
    assert "error: no assignment in" in view.status_label.value and view.summary is None
    items = clear_items(3)
    classroom.write_assignment(class_dir, classroom.make_assignment(items, ["ana", "ben"], 3, everyone_ranks=3))
    view.refresh_button.click()
    assert view.summary.rankings == 0 and "0 of 2 students" in view.summary_label.value
    view.every_s = 0.05
    view.auto_box.value = True  # the checkbox starts the timer
    PreferenceStore(class_dir, "ana").submit(items[0]["prompt"], items[0]["answers"], [[0], [1], [2]], "world")
    deadline = time.monotonic() + 10
    while view.summary.rankings == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    view.auto_box.value = False  # … and stops it
    assert view.summary.rankings == 1 and not view._timer.is_alive()
    assert '<tr data-student="ana"><td>ana</td><td>1 / 3</td>' in view.table.value


# ---- many students at once ----------------------------------------------------------------------------

STUDENT_PROCESS = """
import json, sys, time
from pathlib import Path
from rlhf_course.feedback import simulated_students
folder, go, number, n_students = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
student = simulated_students.simulated_class(n_students, seed=0)[number]
(go.parent / f"ready-{number}").touch()
while not go.exists():  # all students start at once
    time.sleep(0.005)
print(json.dumps([record["id"] for record in simulated_students.rank_like_a_student(student, folder, pause_s=0.02)]))
"""


def test_students_in_separate_processes_rank_at_once_and_every_ranking_counts_once(tmp_path):
    n_students, rankings_each = 30, 25
    folder, go = tmp_path / "class", tmp_path / "go"
    students = simulated_students.simulated_class(n_students, seed=0)
    assignment = classroom.make_assignment(story_items(305), [s.name for s in students], rankings_each)
    classroom.write_assignment(folder, assignment)
    processes = [subprocess.Popen([sys.executable, "-c", STUDENT_PROCESS, str(folder), str(go), str(number),
                                   str(n_students)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for number in range(n_students)]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < n_students and time.monotonic() < deadline:
            time.sleep(0.05)  # each has imported and made its student
        go.touch()
        seen, refresh_seconds = [], []
        while any(process.poll() is None for process in processes):  # the instructor refreshes meanwhile
            summary = class_numbers.class_summary(folder, simulated_pairs=SIMULATED_PAIRS)
            seen.append(summary.rankings)
            refresh_seconds.append(summary.seconds)
            assert all(row.repeats == 0 and row.ranked <= row.assigned for row in summary.students)
        submitted = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            submitted += json.loads(out)
    finally:
        for process in processes:  # only the processes this test started, if a check above failed
            if process.poll() is None:
                process.kill()
                process.wait()
    final = class_numbers.class_summary(folder, simulated_pairs=SIMULATED_PAIRS)
    on_disk = [r["id"] for path in folder.glob("*.jsonl") for r in read_preference_file(path)[0]]
    print(f"{n_students} processes: {len(submitted)} submitted, {final.rankings} found, {len(seen)} refreshes "
          f"while ranking (at most {max(refresh_seconds, default=0):.3f} s), counts seen {seen[:3]} … {seen[-3:]}")
    assert len(submitted) == final.rankings == n_students * rankings_each
    assert sorted(on_disk) == sorted(submitted) and len(set(on_disk)) == len(on_disk)  # all there, none twice
    assert all(row.ranked == row.assigned == rankings_each and row.repeats == 0 for row in final.students)
    assert final.problems == [] and seen == sorted(seen) and seen and seen[0] < final.rankings


def test_a_sync_tools_copy_of_a_students_file_is_counted_once_and_reported(class_dir):
    """Dropbox and OneDrive leave "ana (conflicted copy).jsonl" beside ana.jsonl: its rankings are ana's, once."""
    items = clear_items(3)
    classroom.write_assignment(class_dir, classroom.make_assignment(items, ["ana", "ben"], 3, everyone_ranks=3))
    for name in ("ana", "ben"):
        store = PreferenceStore(class_dir, name)
        for item in items[:2]:
            store.submit(item["prompt"], item["answers"], [[0], [1], [2]], "world")
    once = class_numbers.class_summary(simulated_pairs=SIMULATED_PAIRS)
    copy = class_dir / "ana (conflicted copy).jsonl"
    copy.write_bytes((class_dir / "ana.jsonl").read_bytes())
    summary = class_numbers.class_summary(simulated_pairs=SIMULATED_PAIRS)
    assert (summary.rankings, summary.pairs) == (once.rankings, once.pairs) == (4, 12)
    assert summary.student("ana").ranked == 2
    assert any(copy.name in str(problem) for problem in summary.problems)
