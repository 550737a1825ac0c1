"""A class ranks together: one shared folder, an assignment of who ranks what, and each student's widget.

The class folder is any folder every student can write to: a shared volume on JupyterHub, a network drive,
a synced folder. Set it once with the environment variable `RLHF_CLASS_DIR` (or pass `class_dir=`). It holds

    assignment.json    which items (a prompt and its K answers) each student ranks; written by the instructor
    <student>.jsonl    each student's rankings, appended by `preference_store.PreferenceStore` as they submit

The workflow (book page "Ranking as a class"):

    assignment = classroom.make_assignment(items, ["ana", "ben", ...], rankings_each=25)   # the instructor
    classroom.write_assignment(class_dir, assignment)
    classroom.student_widget()         # each student: type your name, Start, rank your share
    class_view.ClassView()             # the instructor: Refresh shows counts, agreement and who is far off
    class_numbers.class_summary()      # the same numbers as a plain object (tests, scripts)

This module holds the class folder and the assignment: who ranks which items (`make_assignment`), checked all
the way down (`validate_assignment`), written atomically (`write_assignment`) and read back only from a plain
file of the folder (`load_assignment`); and each student's widget (`student_widget`). The class's numbers:
`class_numbers`; the instructor's view: `class_view`; a simulated class: `simulated_students`.

Why it is built this way:
- Every item is ranked by at least two students and a few by everyone, so agreement can be measured; a
  student's share is fixed by the assignment, so a restarted notebook carries on where it stopped.
- Each student appends only to their own file, so no two people ever write one file, and the instructor
  reads without a lock. That is why a network drive works although `flock` may not protect files there
  (`preference_store`): the one writer per file is the student (two tabs of one student still take turns).
- Human rankings are never overwritten or dropped: the store only appends, a new assignment keeps the old
  one beside it, and the view counts rankings of items no longer assigned in their own column.
- Everyone can write to the class folder, so a name in it may lead elsewhere: the assignment and the students'
  files are read and written only as plain files of the folder (`safe_files.not_plain_because`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from rlhf_course.feedback.annotator_names import validate_annotator_name
from rlhf_course.feedback.preference_records import check_checkpoint, item_key, validate_item, validate_text
from rlhf_course.feedback.safe_files import (
    NotPlainFileError,
    not_plain_because,
    read_plain_file,
    set_aside,
    sync_folder,
    write_new_file,
)
from rlhf_course.feedback.widgets import RankingWidget

CLASS_DIR_VARIABLE = "RLHF_CLASS_DIR"
ASSIGNMENT_FILE = "assignment.json"
ASSIGNMENT_FORMAT = "rlhf-course class assignment"
ASSIGNMENT_MAX_BYTES = 50_000_000  # 30 students × 25 items of 4 answers take about 1 MB; far more is a wrong file
ASSIGNMENT_DEPTH = 4  # objects and lists inside each other: the assignment → "items" → an item → its "answers"
ASSIGNMENT_MAX_DEPTH = 16  # deeper is refused before anything else looks at it
REWRITE = "the instructor should write the assignment again with classroom.write_assignment(..., replace=True)"


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


def check_student_file(path: Path) -> None:
    """A `ClassroomError` when a student's rankings file exists but is not a plain file of the class folder
    (`not_plain_because`). The student's widget calls it before reading the file and before every write, so a
    link planted under a student's name never receives their rankings. No file yet is fine."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise ClassroomError(f"cannot look at {path}: {error.strerror or error}") from None
    reason = not_plain_because(info)
    if reason:
        raise ClassroomError(f"{path} is {reason}, not a plain file: nothing was written to it. Ask the instructor "
                             "to move it out of the class folder, then try again")


# --------------------------------------------------------------------------------------------------
# The assignment: who ranks which items
# --------------------------------------------------------------------------------------------------


def items_needed(n_students: int, rankings_each: int, everyone_ranks: int, raters_per_item: int) -> int:
    """How many items an assignment uses: the `everyone_ranks` items all students rank, plus enough items for
    the other rankings when each of them is ranked by `raters_per_item` students:
    everyone_ranks + ⌈n_students · (rankings_each − everyone_ranks) / raters_per_item⌉."""
    return everyone_ranks + math.ceil(n_students * (rankings_each - everyone_ranks) / raters_per_item)


def _check_students(students: Sequence[str], where: str = "in the list of students") -> list[str]:
    """The students' names as the store writes them (`validate_annotator_name`, which may normalise a name:
    "ana " is ana, whose file is ana.jsonl), if each can be a file name and no two would be one file; else a
    `ClassroomError`. A name the assignment spelled otherwise than the store could never Start."""
    names: list[str] = []
    seen: dict[str, tuple[str, str]] = {}  # casefolded name → (as given, as the store writes it)
    for given in students:
        try:
            name = validate_annotator_name(given)
        except ValueError as error:
            raise ClassroomError(f"{where}: {error}") from None
        if name.casefold() in seen:
            raise ClassroomError(f"{where}: {_one_file_message(*seen[name.casefold()], given, name)}")
        seen[name.casefold()] = (given, name)
        names.append(name)
    return names


def _one_file_message(first_given: str, first: str, given: str, name: str) -> str:
    """Why two names of a list would be one student's file."""
    if first_given == given:
        return f"student {given!r} is listed twice"
    if first == name:
        return f"students {first_given!r} and {given!r} are one name to the store ({name!r}): list each student once"
    return (f"students {first!r} and {name!r} differ only in case: on many shared drives they would be one file; "
            "tell them apart another way")


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
            checkpoint = check_checkpoint(item.get("checkpoint", ""), as_json=True)
        except ValueError as error:
            raise ClassroomError(f"item {number}: {error}") from None
        key = item_key(item["prompt"], item["answers"])
        if key in keys:  # one student's two rankings of it would look like one ranking submitted twice
            raise ClassroomError(f"item {number} repeats item {keys[key]} (same prompt, same answers)")
        keys[key] = number
        chosen.append({"id": f"item-{number:04d}", "prompt": item["prompt"], "answers": list(item["answers"]),
                       "checkpoint": checkpoint})
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
    """The assignment checked all the way down, its students' names as the store writes them; otherwise a
    `ClassroomError` naming the setting that is wrong.

    Students' notebooks rely on every part (an id that is not a string, a checkpoint that is not a name, a
    name the store spells otherwise each fail later, at every Start or Submit), so each is checked here. The
    checks take time linear in the assignment's size (sets, not list scans): they run at every Start and
    every refresh of the instructor's view.
    """
    _check_json(assignment)
    if not isinstance(assignment, dict) or assignment.get("format") != ASSIGNMENT_FORMAT:
        raise ClassroomError(f"not a class assignment (no \"format\": \"{ASSIGNMENT_FORMAT}\")")
    items = _check_items(assignment.get("items"))
    ids = {item["id"] for item in items}
    checked = dict(assignment, items=items, students=_check_shares(assignment.get("students"), ids))
    if "everyone" in assignment:
        checked["everyone"] = _check_share(assignment["everyone"], ids, '"everyone" (the items all students rank)',
                                           may_be_empty=True)
    return checked


def _check_json(value: object) -> None:
    """A `ClassroomError` unless `value` is what JSON holds (objects with string keys, lists, strings, numbers,
    true, false, null), nested at most `ASSIGNMENT_MAX_DEPTH` deep, all its text valid (`validate_text`).

    It walks with a list, not by recursion, so an assignment nested 100,000 deep is refused with a message
    rather than ending in a RecursionError; and nothing later prints a value nested deeper than this.
    """
    stack: list[tuple[object, int, str]] = [(value, 1, "the assignment")]  # (value, depth, top-level setting)
    while stack:
        value, depth, setting = stack.pop()
        if isinstance(value, str):
            _check_text(value, setting)
            continue
        if value is None or isinstance(value, (bool, int, float)):
            continue
        if not isinstance(value, (dict, list, tuple)):
            raise ClassroomError(f"{setting} holds a {type(value).__name__}, which JSON cannot store")
        if depth > ASSIGNMENT_MAX_DEPTH:
            raise ClassroomError(f"{setting} is nested more than {ASSIGNMENT_MAX_DEPTH} levels deep (an assignment "
                                 f"is {ASSIGNMENT_DEPTH} levels deep)")
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ClassroomError(f"{setting} has the key {key!r:.60}: JSON keys are strings")
                _check_text(key, setting)
            children = [(child, f'"{key}"' if depth == 1 else setting) for key, child in value.items()]
        else:
            children = [(child, setting) for child in value]
        stack.extend((child, depth + 1, where) for child, where in children)


def _check_text(text: str, setting: str) -> None:
    """`validate_text` as a `ClassroomError` naming the setting the text is in."""
    try:
        validate_text(text, "a string")
    except ValueError as error:
        raise ClassroomError(f"in {setting}: {error}") from None


def _check_items(items: object) -> list[dict]:
    """The items, each checked (`_check_item`), no two with one id or one content; else a `ClassroomError`."""
    if not isinstance(items, list) or not items:
        raise ClassroomError('"items" must be a non-empty list of {"id", "prompt", "answers", "checkpoint"}')
    number_of_id: dict[str, int] = {}
    number_of_key: dict[str, int] = {}
    checked = []
    for number, item in enumerate(items):
        item = _check_item(number, item)
        if item["id"] in number_of_id:
            raise ClassroomError(f"item {number} has the \"id\" {item['id']!r:.80} of item "
                                 f"{number_of_id[item['id']]}: each item needs its own")
        key = item_key(item["prompt"], item["answers"])
        if key in number_of_key:  # one student's two rankings of it would look like one ranking submitted twice
            raise ClassroomError(f"item {number} ({item['id']!r:.80}) repeats item {number_of_key[key]} (same "
                                 "prompt, same answers)")
        number_of_id[item["id"]], number_of_key[key] = number, number
        checked.append(item)
    return checked


def _check_item(number: int, item: object) -> dict:
    """Item `number` of "items" with its "checkpoint" ("" when it has none), if its id, prompt, answers and
    checkpoint are what the store writes; else a `ClassroomError` naming the item and the setting."""
    if not isinstance(item, dict):
        raise ClassroomError(f"item {number} of \"items\" must be an object {{\"id\", \"prompt\", \"answers\", "
                             f"\"checkpoint\"}}, not {type(item).__name__}")
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise ClassroomError(f"item {number} of \"items\" has no \"id\" (a non-empty string): {item_id!r:.60}")
    try:
        validate_item(item.get("prompt"), item.get("answers"))
        checkpoint = check_checkpoint(item.get("checkpoint", ""), as_json=True)
    except ValueError as error:
        raise ClassroomError(f"item {number} ({item_id!r:.80}): {error}") from None
    return dict(item, answers=list(item["answers"]), checkpoint=checkpoint)


def _check_shares(students: object, ids: set[str]) -> dict[str, list[str]]:
    """Each student's share (`_check_share`), keyed by their name as the store writes it; else a `ClassroomError`."""
    if not isinstance(students, dict) or not students:
        raise ClassroomError('"students" must map each student\'s name to the ids of their items')
    names = _check_students(list(students), where='in "students"')
    return {name: _check_share(share, ids, f"student {name!r}") for name, share in zip(names, students.values())}


def _check_share(share: object, ids: set[str], whose: str, may_be_empty: bool = False) -> list[str]:
    """`share` if it is a list of ids of `ids`, none twice; else a `ClassroomError` saying `whose` it is.
    One pass with a set: a share of 10,000 ids takes milliseconds, not seconds."""
    if not isinstance(share, list) or not (share or may_be_empty):
        raise ClassroomError(f"{whose} has no list of item ids")
    seen: set[str] = set()
    for item_id in share:
        if not isinstance(item_id, str):
            raise ClassroomError(f"{whose} is given {item_id!r:.60}, which is not an item id (a string)")
        if item_id not in ids:
            raise ClassroomError(f"{whose} is given item {item_id!r:.80}, which is not in \"items\"")
        if item_id in seen:
            raise ClassroomError(f"{whose} is given item {item_id!r:.80} twice")
        seen.add(item_id)
    return list(share)


def assignment_path(class_dir: str | Path | None = None) -> Path:
    return class_folder(class_dir) / ASSIGNMENT_FILE


def write_assignment(class_dir: str | Path | None, assignment: dict, replace: bool = False) -> Path:
    """Write `assignment.json`: a new temporary file in the same folder, fsynced, then `os.replace`, so a
    student's notebook reads the old assignment or the new one, never half of one.

    An existing assignment is replaced only with `replace=True` (students may be ranking it). It is then
    renamed to `assignment.json.replaced-<time>` (renamed, never copied: whatever the name held, a link
    included, stays as it was), just before the new one takes its name; a student pressing Start in that
    instant is told there is no assignment and presses Start again. Rankings are in the students' files
    and are never touched.
    """
    path = assignment_path(class_dir)
    try:
        assignment = validate_assignment(assignment)
    except ClassroomError as error:
        raise ClassroomError(f"{path} not written: {error}") from None
    data = (json.dumps(assignment, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path) and not replace:
            raise ClassroomError(f"{path} already exists and students may be ranking it; pass replace=True to "
                                 "write a new one (the old one is kept beside it, and no ranking is lost)")
        _put_in_place(path, write_new_file(path.parent, path.name, data))
    except OSError as error:
        raise ClassroomError(f"could not write {path}: {error.strerror or error}. The assignment there before, if "
                             f"any, is kept (as {path.name} or beside it as {path.name}.replaced-*)") from None
    return path


def _put_in_place(path: Path, temporary: Path) -> None:
    """Rename `temporary` to `path`, setting aside what `path` held (`safe_files.set_aside`); the temporary file is
    removed if that fails."""
    try:
        if os.path.lexists(path):
            set_aside(path)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    sync_folder(path.parent, must_succeed=False)


def load_assignment(class_dir: str | Path | None = None) -> dict:
    """The class's assignment; one `ClassroomError` naming the file for a missing, unreadable or bad one.

    It is read only from a plain file of the class folder (`safe_files.read_plain_file`: never through a link, never
    from a FIFO or a device, at most `ASSIGNMENT_MAX_BYTES`) and checked all the way down."""
    path = assignment_path(class_dir)
    try:
        data = read_plain_file(path, ASSIGNMENT_MAX_BYTES)
    except FileNotFoundError:
        raise ClassroomError(f"no assignment in {path.parent}: the instructor writes {path.name} there with "
                             "classroom.write_assignment (is the class folder right?)") from None
    except NotPlainFileError as error:
        raise ClassroomError(f"{error}: not read; {REWRITE}") from None
    except OSError as error:
        raise ClassroomError(f"cannot read {path}: {error.strerror or error}") from None
    assignment = _parse_assignment(path, data)
    try:
        return validate_assignment(assignment)
    except ClassroomError as error:
        raise ClassroomError(f"{path}: {error}; {REWRITE}") from None


def _parse_assignment(path: Path, data: bytes) -> object:
    """The JSON in `data`, a byte-order mark at its start allowed (some editors write one); one
    `ClassroomError` naming `path` for text that is not UTF-8, an empty file, bad JSON, or JSON nested too
    deeply for Python's parser (`[[[[…` thousands deep ends in a RecursionError)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ClassroomError(f"{path}: not UTF-8 text (byte {error.start + 1}: {error.reason}); {REWRITE}") from None
    if not text.strip():
        raise ClassroomError(f"{path} is empty; {REWRITE}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ClassroomError(f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno}); "
                             f"{REWRITE}") from None
    except RecursionError:
        raise ClassroomError(f"{path}: JSON nested too deeply to read (an assignment is {ASSIGNMENT_DEPTH} levels "
                             f"deep); {REWRITE}") from None


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
    rankings to `<class folder>/<name>.jsonl`; a student who comes back carries on where they stopped.
    Before it reads that file and before every write, `check_student_file` makes sure it is a plain file of
    the folder, not a link someone put there in the student's name."""
    folder = class_folder(class_dir)
    return RankingWidget(lambda name: student_items(folder, name), store_folder=folder, annotator=annotator,
                         source=source, check_file=check_student_file)
