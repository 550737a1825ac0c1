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
import errno
import html
import json
import math
import os
import random
import stat
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import ipywidgets as widgets

from rlhf_course.feedback.annotators import (
    GoldAnnotator,
    LengthBiasedAnnotator,
    MoodBiasedAnnotator,
    PositionBiasedAnnotator,
    simulated_store,
)
from rlhf_course.feedback.preference_store import (
    Problem,
    effective_records,
    item_key,
    preference_files,
    read_preference_files,
    validate_annotator_name,
    validate_item,
    validate_text,
)
from rlhf_course.feedback.rankings import Ranking, preference_labels, ranking_to_pairs
from rlhf_course.feedback.widgets import RankingWidget
from rlhf_course.world import gold_score

CLASS_DIR_VARIABLE = "RLHF_CLASS_DIR"
ASSIGNMENT_FILE = "assignment.json"
ASSIGNMENT_FORMAT = "rlhf-course class assignment"
ASSIGNMENT_MAX_BYTES = 50_000_000  # 30 students × 25 items of 4 answers take about 1 MB; far more is a wrong file
ASSIGNMENT_DEPTH = 4  # objects and lists inside each other: the assignment → "items" → an item → its "answers"
ASSIGNMENT_MAX_DEPTH = 16  # deeper is refused before anything else looks at it
REWRITE = "the instructor should write the assignment again with classroom.write_assignment(..., replace=True)"

# Opening a file of the class folder: never through a symbolic link (O_NOFOLLOW where the OS has it), never
# waiting (O_NONBLOCK: opening a FIFO waits for a writer), never into a file that is already there (O_EXCL).
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC


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


def not_plain_because(info: os.stat_result) -> str | None:
    """Why a name of the class folder (its `os.lstat`) is not a plain file of the folder; None when it is one.

    Everyone in the class can write to the folder, so a name in it may lead elsewhere: a symbolic link to any
    file, a hard link (a second name of a file that lives outside the folder), a FIFO that blocks whoever
    opens it, a device that never ends. The class reads and writes only plain files with one name.
    """
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link, which could lead to any file outside the class folder"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), which would block whoever opens it"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if not stat.S_ISREG(mode):
        return "not a plain file"
    if info.st_nlink > 1:
        return (f"a hard link (one file with {info.st_nlink} names), which could be a file from outside the "
                "class folder")
    return None


def _read_plain_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path` if it is a plain file of the class folder (`not_plain_because`) of at most
    `max_bytes`; else a `ClassroomError` saying what it is (`FileNotFoundError` when there is none).

    `lstat` looks at the name without following it; the open refuses a link and never waits; `fstat` checks
    that the file opened is the one looked at, in case another was put in its place in between.
    """
    info = os.lstat(path)
    reason = not_plain_because(info)
    if reason:
        raise ClassroomError(f"{path} is {reason}, not a plain file")
    if info.st_size > max_bytes:
        raise ClassroomError(f"{path} is {info.st_size / 1e6:.1f} MB, more than the {max_bytes / 1e6:g} MB it may be")
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link put there after the lstat
            raise ClassroomError(f"{path} changed while it was opened: it is now a symbolic link") from None
        raise
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not_plain_because(opened):
            raise ClassroomError(f"{path} changed while it was opened: another file was put in its place")
        with open(fd, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ClassroomError(f"{path} grew past the {max_bytes / 1e6:g} MB it may be while it was read")
    return data


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


def _write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """A new file `.<name>.<random>.tmp` in `folder` holding `data`, fsynced. Made with O_EXCL and O_NOFOLLOW:
    never a file someone else put there, nor one a link leads to."""
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, _CREATE_FLAGS, 0o644)
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _set_aside(path: Path) -> Path:
    """Rename whatever `path` is (a file; a link, FIFO or folder someone put there) to
    `<name>.replaced-<time>` beside it: renamed, never opened or copied, so nothing behind a link is read,
    nothing is written through one, and nothing is lost. Returns the new name."""
    stamp = f"{datetime.now():%Y%m%d-%H%M%S-%f}"
    aside, number = path.with_name(f"{path.name}.replaced-{stamp}"), 1
    while os.path.lexists(aside):
        aside, number = path.with_name(f"{path.name}.replaced-{stamp}-{number}"), number + 1
    os.rename(path, aside)
    return aside


def _sync_folder(folder: Path) -> None:
    """fsync `folder`, so that a rename in it survives a crash; skipped where a folder cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def _check_checkpoint(checkpoint: object) -> str:
    """The checkpoint if it is a name (a string; "" when unknown); else a `ValueError`. The store refuses a
    ranking without one, so a bad checkpoint would fail every Submit of the item."""
    if not isinstance(checkpoint, str):
        raise ValueError(f"\"checkpoint\" must be a string naming the checkpoint that wrote the answers (such as "
                         f"\"sft\"), not {checkpoint!r:.60}")
    return checkpoint


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
            checkpoint = _check_checkpoint(item.get("checkpoint", ""))
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
        checkpoint = _check_checkpoint(item.get("checkpoint", ""))
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
        _put_in_place(path, _write_new_file(path.parent, path.name, data))
    except OSError as error:
        raise ClassroomError(f"could not write {path}: {error.strerror or error}. The assignment there before, if "
                             f"any, is kept (as {path.name} or beside it as {path.name}.replaced-*)") from None
    return path


def _put_in_place(path: Path, temporary: Path) -> None:
    """Rename `temporary` to `path`, setting aside what `path` held (`_set_aside`); the temporary file is
    removed if that fails."""
    try:
        if os.path.lexists(path):
            _set_aside(path)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def load_assignment(class_dir: str | Path | None = None) -> dict:
    """The class's assignment; one `ClassroomError` naming the file for a missing, unreadable or bad one.

    It is read only from a plain file of the class folder (`_read_plain_file`: never through a link, never
    from a FIFO or a device, at most `ASSIGNMENT_MAX_BYTES`) and checked all the way down."""
    path = assignment_path(class_dir)
    try:
        data = _read_plain_file(path, ASSIGNMENT_MAX_BYTES)
    except FileNotFoundError:
        raise ClassroomError(f"no assignment in {path.parent}: the instructor writes {path.name} there with "
                             "classroom.write_assignment (is the class folder right?)") from None
    except ClassroomError as error:
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
        self._read_at = ""  # when the numbers shown were read

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
        """Read the folder again and show the numbers; the summary, or None when it cannot be read. Whatever
        goes wrong is shown in the status line and the last numbers stay: the timer calls this too, and must
        live on to show fresh numbers once the folder is fixed."""
        with self._lock:
            try:
                summary = class_summary(self.folder, simulated_pairs=self.simulated_pairs)
                headline, table = summary_html(summary), students_html(summary)
            except Exception as error:  # noqa: BLE001 (any error: shown, and the next refresh tries again)
                self._show_error(error)
                return None
            self.summary = summary
            self.summary_label.value, self.table.value = headline, table
            self._read_at = f"{datetime.now():%H:%M:%S}"
            self.status_label.value = (f"{html.escape(str(self.folder))} · read at {self._read_at} "
                                       f"in {summary.seconds:.2f} s")
            return summary

    def _show_error(self, error: Exception) -> None:
        """Say in the status line why this refresh failed, and how old the numbers below are."""
        text = str(error) if isinstance(error, (ClassroomError, OSError)) else f"{type(error).__name__}: {error}"
        when = f"at {datetime.now():%H:%M:%S}"
        if self.summary is not None:
            when += f"; the numbers below are from {self._read_at}"
        self.status_label.value = f'<span style="color: #b00020">error: {html.escape(text)} ({when})</span>'

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
