"""The preference store: people's and simulated annotators' rankings, kept safe on disk, loaded and checked.

Where rankings live
    One append-only JSONL file per annotator: people's rankings in `data/preferences/<name>.jsonl`
    (committed with the course), simulated annotators' in `runs/<profile>/preferences/<name>.jsonl`.

A ranking is a list of groups of answer indices, best → worst, a group holding tied answers:
`[[2], [0, 3], [1]]` says answer 2 is best, 0 and 3 tie, 1 is worst (what a ranking means and which pairs it
implies: `rankings`).

The three kinds of line in a preference file (one JSON object per line):

    {"id": "9f…", "time": "2026-11-27T10:00:00+00:00", "annotator": "ana", "source": "human",
     "checkpoint": "sft", "prompt": "...", "answers": ["...", "..."], "ranking": [[1], [0]]}
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "checkpoint": "sft",
     "prompt": "...", "answers": [...], "skipped": true}                      # a skip: no pairs
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "undo": "9f…"}  # drops record 9f…

Why it is built this way (human rankings are expensive and must never be lost):
- Each record is written as a whole line to a file opened with `O_APPEND`, under an exclusive
  `fcntl.flock`, and `os.fsync`ed before `submit` returns: a crashed kernel loses at most the ranking
  being made, and two processes appending to one file never interleave their lines.
  (A simulated annotator's thousands of rankings go in with `submit_many`: one write, one fsync.)
- Nothing is ever overwritten or deleted. Undo appends an `undo` record; loaders drop the undone record.
  A line torn by a crash is reported as a problem and the next record starts on a new line. The one
  truncation: a write that fails part-way (disk full) takes its own bytes back, under the lock.
- Lines end at "\\n" and nowhere else, for the store and the loaders alike (U+2028, U+2029 and U+0085
  inside a prompt are text, not line ends; they are written escaped so that other tools agree). A last
  line without its "\\n" (a hand-edited file) is a record like any other.
- Loading never stops at a bad line: it becomes a `Problem` (`file:line: message`), the rest still loads.
  Bad lines include JSON nested too deeply to parse and text JSON can carry but UTF-8 cannot (a lone
  surrogate such as "\\ud800"): validation refuses to write either. Only regular files are read: a FIFO
  or a device named `*.jsonl` is a problem, never opened for reading (a FIFO would block, a device never ends).

Simplifications: one machine (flock does not protect files on network file systems); duplicate
submissions are detected per annotator file, not across annotators.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .rankings import Ranking, answer_letter, ranking_to_pairs, validate_ranking

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "annotator", "checkpoint", "source"]

# letters, digits and "_" at both ends; space, "-", "." allowed inside. No "/", "\", "..", leading dot.
ANNOTATOR_NAME = re.compile(r"^\w(?:[\w .-]{0,62}\w)?$")


class PreferenceStoreError(RuntimeError):
    """A preference file that cannot be written (read-only folder, full disk …). Nothing was saved."""


# --------------------------------------------------------------------------------------------------
# Where preference files live
# --------------------------------------------------------------------------------------------------


def human_preferences_dir() -> Path:
    """`data/preferences/`: people's rankings, committed with the course (`$RLHF_PREFERENCES_DIR` overrides)."""
    from .models import repo_root  # imported here: `models` pulls in torch, the store does not need it

    return Path(os.environ.get("RLHF_PREFERENCES_DIR") or repo_root() / "data" / "preferences")


def simulated_preferences_dir(profile_name: str) -> Path:
    """`runs/<profile>/preferences/`: simulated annotators' rankings, made again by every run."""
    from .models import runs_dir

    return runs_dir(profile_name) / "preferences"


# --------------------------------------------------------------------------------------------------
# Annotator names: each becomes a file name
# --------------------------------------------------------------------------------------------------


def validate_annotator_name(name: str) -> str:
    """The name, stripped, if it is safe as a file name; otherwise a `ValueError` that says why."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("annotator name is empty: type your name (letters, digits, space, '-', '_', '.')")
    name = name.strip()
    if not ANNOTATOR_NAME.match(name) or ".." in name:
        raise ValueError(
            f"annotator name {name!r} is not allowed: use letters, digits, and space, '-', '_' or '.' inside "
            "(no '/', '\\', '..' or leading dot; at most 64 characters) — it becomes a file name"
        )
    return name


# --------------------------------------------------------------------------------------------------
# Records: one line of a preference file
# --------------------------------------------------------------------------------------------------


def item_key(prompt: str, answers: list[str]) -> str:
    """A stable key for "this prompt with these answers in this order" (finds duplicate submissions)."""
    return hashlib.sha256(json.dumps([prompt, list(answers)], ensure_ascii=False).encode()).hexdigest()


def validate_text(text: str, what: str) -> str:
    """`text` if UTF-8 can store it; a `ValueError` for a lone surrogate (JSON `"\\ud800"`, half a UTF-16 pair).

    JSON lets such a string through, but it is not text: the file, the duplicate check and `datasets`
    would all fail on it later — for the whole folder — so it is refused before it is written or loaded.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} contains {text[error.start]!r} at character {error.start + 1}: a lone surrogate (half of a "
            "UTF-16 pair), which is not text and cannot be stored; remove it or replace it with the whole character"
        ) from None
    return text


def validate_item(prompt: object, answers: object) -> None:
    """A `ValueError` unless `prompt` is a non-empty string and `answers` a list of at least two strings
    (all of them valid text: see `validate_text`)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: every ranking needs the prompt its answers reply to")
    if not isinstance(answers, (list, tuple)) or len(answers) < 2:
        raise ValueError(f"a ranking needs at least two answers, got {answers!r:.80}")
    if not all(isinstance(answer, str) for answer in answers):
        raise ValueError("every answer must be a string")
    validate_text(prompt, "the prompt")
    for index, answer in enumerate(answers):
        validate_text(answer, f"answer {answer_letter(index)}")


def validate_record(record: object) -> dict:
    """The record if it is a valid ranking, skip or undo record; otherwise a `ValueError` saying why."""
    if not isinstance(record, dict):
        raise ValueError(f"a record is a JSON object, not {type(record).__name__}")
    for field in ("id", "time", "annotator", "source"):
        if not isinstance(record.get(field), str) or not record[field]:
            raise ValueError(f"missing or empty field {field!r}")
    for field, value in record.items():  # id, time, annotator, source, checkpoint, undo (prompt, answers: below)
        if isinstance(value, str) and field != "prompt":
            validate_text(value, f"field {field!r}")
    kinds = [kind for kind in ("ranking", "skipped", "undo") if kind in record]
    if len(kinds) != 1:
        raise ValueError("a record has exactly one of 'ranking', 'skipped' or 'undo'")
    if kinds == ["undo"]:
        if not isinstance(record["undo"], str) or not record["undo"]:
            raise ValueError("'undo' must be the id of the undone record")
        return record
    if kinds == ["skipped"] and record["skipped"] is not True:
        raise ValueError("'skipped' must be true")
    validate_item(record.get("prompt"), record.get("answers"))
    if not isinstance(record.get("checkpoint"), str):
        raise ValueError("missing field 'checkpoint' (the checkpoint that produced the answers)")
    if kinds == ["ranking"]:
        validate_ranking(record["ranking"], len(record["answers"]))
    return record


def parse_record_line(line: str) -> dict:
    """One JSONL line → a validated record, or `ValueError` with a message fit for `file:line: message`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:  # `[[[[…` a thousand deep: Python's parser runs out of stack
        raise ValueError("JSON nested too deeply to read (a record is a flat object of strings and lists)") from None
    return validate_record(record)


def parse_record_bytes(raw: bytes) -> dict:
    """One line of a file as bytes (its "\\n" taken off) → a validated record, or `ValueError`.

    The one way the store and the loaders read a line, so that they agree on what is a record.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid UTF-8 (byte {error.start + 1} of the line: {error.reason})") from None
    return parse_record_line(text)


# Characters `str.splitlines()` (and so some editors and tools) take as line ends, which JSON allows raw
# inside strings. Written escaped, a record is one line whatever splits it; read, a raw one is still text.
_LINE_BREAKS_IN_TEXT = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def record_line(record: dict) -> bytes:
    """A record as one line of a preference file: UTF-8 JSON and "\\n", its only line break the last.

    Non-ASCII text stays readable (`ensure_ascii=False`: the files are committed and read by people);
    only the three characters above are escaped. They can only occur inside JSON strings, where the
    escape means the same character.
    """
    text = json.dumps(record, ensure_ascii=False)
    for character, escape in _LINE_BREAKS_IN_TEXT.items():
        text = text.replace(character, escape)
    return (text + "\n").encode("utf-8")


def effective_records(records: list[dict]) -> list[dict]:
    """The ranking and skip records that no undo record names, in file order."""
    undone = {record["undo"] for record in records if "undo" in record}
    return [record for record in records if "undo" not in record and record["id"] not in undone]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# The store: one annotator's append-only file
# --------------------------------------------------------------------------------------------------


class PreferenceStore:
    """One annotator's append-only preference file `<folder>/<annotator>.jsonl`.

    >>> store = PreferenceStore("data/preferences", "ana")
    >>> store.submit("Write a story…", ["answer A", "answer B"], [[1], [0]], checkpoint="sft")

    The folder is created at the first write. Every write is validated first, then appended, flushed and
    fsynced before the method returns. A write that fails (read-only folder, full disk) raises one
    `PreferenceStoreError` with the path and advice; the file is unchanged (or, if even taking back a
    half-written line failed, the message says what the file now ends with) and the caller still has the
    ranking, so it can be submitted again.
    """

    def __init__(self, folder: str | Path, annotator: str, source: str = "human"):
        self.annotator = validate_annotator_name(annotator)
        if not isinstance(source, str) or not source:
            raise ValueError("source must be a non-empty string such as 'human' or 'simulated:gold'")
        self.source = validate_text(source, "the source")
        self.folder = Path(folder)
        self.path = self.folder / f"{self.annotator}.jsonl"
        self._records: list[dict] = []  # every valid line read so far, in file order
        # for duplicate checks without rescanning the file: item_key → ids of its rankings, and the undone ids
        self._ranking_ids: dict[str, list[str]] = {}
        self._undone: set[str] = set()
        self._offset = 0  # bytes of the file already read (always at a line boundary)

    # ---- reading ---------------------------------------------------------------------------------

    def _read_new_lines(self) -> None:
        """Read the lines appended since the last call (by this or any other process).

        Lines end at "\\n" only, as for the loaders. The last line may lack its "\\n": if it is a whole
        record (a hand-edited file) it counts now; if not, it may be a line another process is still
        writing, so it is read again next time.
        """
        try:
            fd = _open_regular_file(self.path)
        except FileNotFoundError:
            return
        except OSError as error:
            raise PreferenceStoreError(
                f"cannot read {self.path}: {error.strerror or error}. Is {self.folder} a folder you can read?"
            ) from error
        with open(fd, "rb") as file:
            file.seek(self._offset)
            data = file.read()
        *lines, last = data.split(b"\n")
        self._offset += len(data) - len(last)
        for line in lines:
            self._take_line(line)
        if self._take_line(last):
            self._offset += len(last)

    def _take_line(self, line: bytes) -> bool:
        """Keep one line if it is a valid record (bad lines are reported by the loaders); whether it was."""
        if not line.strip():
            return False
        try:
            record = parse_record_bytes(line)
        except ValueError:
            return False
        self._records.append(record)
        if "undo" in record:
            self._undone.add(record["undo"])
        elif "ranking" in record:
            self._ranking_ids.setdefault(item_key(record["prompt"], record["answers"]), []).append(record["id"])
        return True

    def records(self) -> list[dict]:
        """The effective ranking and skip records of this file (undone ones dropped), oldest first."""
        self._read_new_lines()
        return effective_records(self._records)

    def has_ranked(self, prompt: str, answers: list[str]) -> bool:
        """Whether an effective (not undone) ranking of this prompt with these answers is in the file."""
        self._read_new_lines()
        return self._ranked(item_key(prompt, answers))

    def _ranked(self, key: str) -> bool:
        """Whether the lines read so far hold an effective ranking of the item `key` (no reading)."""
        return any(i not in self._undone for i in self._ranking_ids.get(key, []))

    # ---- writing ---------------------------------------------------------------------------------

    def submit(self, prompt: str, answers: list[str], ranking: Ranking, checkpoint: str) -> dict:
        """Validate, append and fsync one ranking; return the record written."""
        validate_item(prompt, answers)
        ranking = validate_ranking(ranking, len(answers))
        record = self._new_record(checkpoint, prompt=prompt, answers=list(answers), ranking=ranking)
        return self._append(record, reject_duplicate=True)

    def submit_many(self, rankings: Iterable[tuple[str, list[str], Ranking, str]]) -> list[dict]:
        """Validate and append many `(prompt, answers, ranking, checkpoint)` rankings under one lock with one
        fsync (a simulated annotator writes thousands: an fsync each took 2.5 ms here). Rankings of items the
        file already ranks, or ranked earlier in the same call, are left out. Returns the records written."""
        records = []
        for prompt, answers, ranking, checkpoint in rankings:
            validate_item(prompt, answers)
            ranking = validate_ranking(ranking, len(answers))
            records.append(self._new_record(checkpoint, prompt=prompt, answers=list(answers), ranking=ranking))
        with self._locked_file() as fd:
            self._read_new_lines()  # under the lock: sees every line other processes wrote
            new, keys = [], set()
            for record in records:
                key = item_key(record["prompt"], record["answers"])
                if key not in keys and not self._ranked(key):
                    new.append(record)
                    keys.add(key)
            if new:
                self._write_lines(fd, new)
        return new

    def skip(self, prompt: str, answers: list[str], checkpoint: str) -> dict:
        """Record that this item was skipped (it gives no pairs); return the record written."""
        validate_item(prompt, answers)
        return self._append(self._new_record(checkpoint, prompt=prompt, answers=list(answers), skipped=True))

    def undo_last(self) -> dict | None:
        """Append an undo for the newest effective record; return the record undone (None if none)."""
        with self._locked_file() as fd:
            self._read_new_lines()
            remaining = effective_records(self._records)
            if not remaining:
                return None
            undone = remaining[-1]
            self._write_lines(fd, [{"id": uuid.uuid4().hex, "time": _now_iso(), "annotator": self.annotator,
                                    "source": self.source, "undo": undone["id"]}])
            return undone

    def _new_record(self, checkpoint: str, **fields) -> dict:
        if not isinstance(checkpoint, str):
            raise ValueError(f"checkpoint must name the checkpoint that wrote the answers, not {checkpoint!r}")
        validate_text(checkpoint, "the checkpoint")
        return {"id": uuid.uuid4().hex, "time": _now_iso(), "annotator": self.annotator,
                "source": self.source, "checkpoint": checkpoint, **fields}

    def _append(self, record: dict, reject_duplicate: bool = False) -> dict:
        with self._locked_file() as fd:
            self._read_new_lines()  # under the lock: sees every line other processes wrote
            if reject_duplicate and self._ranked(item_key(record["prompt"], record["answers"])):
                raise ValueError(
                    f"{self.annotator} has already ranked these answers to this prompt (in {self.path}); "
                    "undo that ranking first if you want to change it"
                )
            self._write_lines(fd, [record])
        return record

    def _write_lines(self, fd: int, records: list[dict]) -> None:
        """Append whole lines, one per record, then fsync: all of them or none. Called with the file locked.

        `os.write` may take only part of the bytes (a full disk), so it runs until all are written. If a
        write or the fsync fails part-way, the file is truncated back to its size before: only our own
        bytes go (we hold the lock), and the file never keeps half a record that nobody was told about.
        """
        data = b"".join(record_line(record) for record in records)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn or hand-edited last line keeps its own line; ours starts fresh
        except OSError as error:
            raise self._write_error(error) from error
        written = 0
        try:
            while written < len(data):
                count = os.write(fd, data[written:])
                if count <= 0:  # a regular file that takes nothing: do not loop for ever
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
            os.fsync(fd)
        except OSError as error:
            raise self._failed_write(fd, size, written, len(data), error) from error
        self._read_new_lines()

    def _failed_write(self, fd: int, size: int, written: int, total: int, error: OSError) -> PreferenceStoreError:
        """Take back the `written` bytes of a failed write (the file was `size` bytes) and say precisely
        what the file holds now."""
        if not written:
            return self._write_error(error)
        reason = error.strerror or str(error)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError as truncate_error:
            if written == total:
                what = (f"the whole ranking ({total} bytes) is in the file, but it may not be on disk yet (fsync "
                        f"failed), and taking it back failed too ({truncate_error.strerror or truncate_error}). "
                        "Do not submit it again (it would be a duplicate); check the file with "
                        f"`python -m rlhf_course prefs check {self.folder}`.")
            else:
                what = (f"{written} of its {total} bytes were appended, and taking them back failed too "
                        f"({truncate_error.strerror or truncate_error}): the file now ends with an incomplete line "
                        f"after byte {size}, which the loaders report as a bad line and skip; every earlier record "
                        "is intact and the next one starts on a new line. Your ranking is not saved and is kept: "
                        "free some space and submit again.")
            return PreferenceStoreError(f"could not save to {self.path}: {reason}. {what}")
        return PreferenceStoreError(
            f"could not save to {self.path}: {reason}. {written} of {total} bytes had been appended; they were "
            f"taken back, so the file is as it was ({size} bytes) and holds nothing of this ranking. Your ranking "
            "is kept: free some space (or choose another folder) and submit again."
        )

    def _locked_file(self):
        """Open the file for appending (creating folder and file) and hold an exclusive flock."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _check_regular_file(self.path, missing_ok=True)  # a FIFO or a device is no place for rankings
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise self._write_error(error) from error
        try:
            _check_regular_mode(os.fstat(fd).st_mode)  # in case it was swapped between the check and the open
        except OSError as error:
            os.close(fd)
            raise self._write_error(error) from error
        return _Flocked(fd)

    def _write_error(self, error: OSError) -> PreferenceStoreError:
        return PreferenceStoreError(
            f"could not save to {self.path}: {error.strerror or error}. Nothing was written and your ranking "
            "is kept: choose a folder you can write to (or fix its permissions) and submit again."
        )

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.folder)!r}, {self.annotator!r}, source={self.source!r})"


class _Flocked:
    """Context manager: holds `fcntl.flock(LOCK_EX)` on an open fd, closes it on exit."""

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> int:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# --------------------------------------------------------------------------------------------------
# Files that can be made again (simulated rankings, the widget demo): set aside, never mixed in
# --------------------------------------------------------------------------------------------------


def set_aside_if_stale(store: PreferenceStore, items: list[dict]) -> Path | None:
    """Rename `store`'s file aside when it ranks answers that are not among `items`: an earlier run's
    candidates (notebook 02 was re-run, say). Training on both would mix two checkpoints' answers, so the
    annotator starts a new file; the old one stays beside it as `<name>.jsonl.replaced-<time>`, which no
    loader reads, and nothing is deleted. For regenerable rankings only (simulated annotators, the headless
    widget demo): people's own files are never touched. Returns the new name of the old file, if any."""
    current = {item_key(item["prompt"], item["answers"]) for item in items}
    if not any(item_key(r["prompt"], r["answers"]) not in current for r in store.records() if "ranking" in r):
        return None
    aside = store.path.with_name(f"{store.path.name}.replaced-{datetime.now():%Y%m%d-%H%M%S-%f}")
    store.path.rename(aside)
    store.__init__(store.folder, store.annotator, store.source)
    return aside


# --------------------------------------------------------------------------------------------------
# Loading and checking preference files
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A bad line (or file, when `line_number` is 0) in a preference file."""

    path: Path
    line_number: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line_number}" if self.line_number else f"{self.path}"
        return f"{where}: {self.message}"


_FILE_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


def _check_regular_mode(mode: int) -> None:
    """An `OSError` (EINVAL, saying what it is instead) unless `mode` is a regular file's."""
    if not stat.S_ISREG(mode):
        kind = next((name for is_kind, name in _FILE_KINDS if is_kind(mode)), "something else")
        raise OSError(errno.EINVAL, f"not a regular file but {kind}; preference files are plain files")


def _check_regular_file(path: Path, missing_ok: bool = False) -> None:
    """`_check_regular_mode` for a path, from `os.stat` alone: nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    _check_regular_mode(mode)


def _open_regular_file(path: Path) -> int:
    """A read-only fd of `path` if it is a regular file, else `OSError`; never blocks.

    Opening a FIFO for reading waits for a writer, and a device (`/dev/zero`) never ends: so `stat`
    first (nothing opened), and `O_NONBLOCK` plus `fstat` for a file swapped in between.
    """
    _check_regular_file(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular_mode(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def _path_problem(path: Path, error: OSError) -> Problem:
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return Problem(path, 0, "no such file or folder")
    return Problem(path, 0, f"not read: {error.strerror or error}")


def preference_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand `paths` (files, or folders meaning all their `*.jsonl`) into regular files to read.

    Each path that cannot be used is a problem, never a silent "no files": a missing path, a folder that
    cannot be listed (permission denied), and anything that is not a regular file (a FIFO, a device),
    which is not opened.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in map(Path, paths):
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError as error:
            problems.append(_path_problem(path, error))
            continue
        candidates = [path]
        if is_folder:
            try:
                with os.scandir(path) as entries:
                    candidates = [path / name for name in sorted(e.name for e in entries if e.name.endswith(".jsonl"))]
            except OSError as error:
                problems.append(Problem(path, 0, f"cannot read this folder: {error.strerror or error}; "
                                                 "none of its preference files was read"))
                continue
        for candidate in candidates:
            try:
                _check_regular_file(candidate)
            except OSError as error:
                problems.append(_path_problem(candidate, error))
                continue
            files.append(candidate)
    return files, problems


def read_preference_file(path: Path) -> tuple[list[dict], list[Problem]]:
    """All valid records of one file in order (undo records included) and a `Problem` per bad line.

    Bad lines: not UTF-8, not JSON (or nested too deeply to parse), not a valid record (a lone surrogate
    included), an id seen before, an undo naming no earlier record. Lines end at "\\n" only, as for the store.
    """
    try:
        with open(_open_regular_file(Path(path)), "rb") as file:
            data = file.read()
    except OSError as error:
        return [], [Problem(Path(path), 0, f"cannot read: {error.strerror or error}")]
    records: list[dict] = []
    problems: list[Problem] = []
    ids: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = parse_record_bytes(raw)
            if record["id"] in ids:
                raise ValueError(f"duplicate record id {record['id']!r}")
            if "undo" in record and record["undo"] not in ids:
                raise ValueError(f"undo names record {record['undo']!r}, which is not earlier in this file")
        except ValueError as error:
            problems.append(Problem(Path(path), number, str(error)))
            continue
        ids.add(record["id"])
        records.append(record)
    return records, problems


def record_pairs(record: dict) -> list[dict]:
    """The pairwise rows (PAIR_COLUMNS) of one ranking record; none for a skip."""
    if "ranking" not in record:
        return []
    answers = record["answers"]
    return [
        {"prompt": record["prompt"], "chosen": answers[chosen], "rejected": answers[rejected],
         "annotator": record["annotator"], "checkpoint": record["checkpoint"], "source": record["source"]}
        for chosen, rejected in ranking_to_pairs(answers, record["ranking"])
    ]


def load_preferences(paths: str | Path | Iterable[str | Path]):
    """Load preference files into pairwise rows: `(datasets.Dataset, list[Problem])`.

    Columns: prompt, chosen, rejected, annotator, checkpoint, source — every pair each ranking implies
    (ties, skips and undone records give none). Bad lines become problems; every valid line still loads.
    """
    from datasets import Dataset, Features, Value  # imported here: `datasets` takes a second to import

    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, problems = preference_files(paths)
    rows: list[dict] = []
    for path in files:
        records, file_problems = read_preference_file(path)
        problems.extend(file_problems)
        for record in effective_records(records):
            rows.extend(record_pairs(record))
    features = Features({column: Value("string") for column in PAIR_COLUMNS})
    columns = {column: [row[column] for row in rows] for column in PAIR_COLUMNS}
    return Dataset.from_dict(columns, features=features), problems


def check_preference_files(paths: Iterable[str | Path]) -> int:
    """Print a summary per file and every problem as `file:line: message`; 0 if no problems, else 1."""
    files, problems = preference_files(paths)
    for path in files:
        records, file_problems = read_preference_file(path)
        kept = effective_records(records)
        rankings = sum("ranking" in r for r in kept)
        skips = sum("skipped" in r for r in kept)
        undos = sum("undo" in r for r in records)
        pairs = sum(len(record_pairs(r)) for r in kept)
        print(f"{path}: {rankings} rankings, {skips} skipped, {undos} undone, {pairs} pairs, "
              f"{len(file_problems)} problem(s)")
        problems.extend(file_problems)
    if not files and not problems:
        print("no preference files (*.jsonl) found")
    for problem in problems:
        print(problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
