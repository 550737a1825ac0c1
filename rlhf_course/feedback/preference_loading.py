"""Reading preference files: records checked line by line, loaded as preference pairs, and `prefs check`.

- `preference_files`: the regular files that paths (files, or folders meaning all their `*.jsonl`) name, each
  once; a missing path, a link inside a folder, a FIFO or a device is a `Problem`, never opened.
- `read_preference_file(s)`: each file's valid records and a `Problem` (`file:line: message`) per bad line;
  loading never stops at a bad line. Records are identified by their `id`: the same record reached twice (a
  sync tool's "ana (conflicted copy).jsonl", a link `ben.jsonl → ana.jsonl`, a path given twice) is loaded
  once and reported. An undo takes back its record wherever it is in the file, as in the store.
- `load_preferences`: every pair the effective rankings imply, as a `datasets.Dataset` of `PAIR_COLUMNS`.
- `check_preference_files`: what `python -m rlhf_course prefs check` prints (text only: no torch, no `datasets`).

Lines end where a text editor ends them ("\\n", "\\r\\n" or "\\r"; a BOM is not text: `safe_files.text_lines`),
and a line is a record as the store reads it (`preference_records.parse_record_bytes`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rlhf_course.feedback.preference_records import effective_records, parse_record_bytes
from rlhf_course.feedback.rankings import ranking_to_pairs
from rlhf_course.feedback.safe_files import check_regular_file, link_target, open_regular_file, text_lines

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "annotator", "checkpoint", "source"]


def printable(text: str) -> str:
    """`text` as one line that prints as it is: characters that are not printable (line breaks, terminal escape
    codes, other control and format characters, lone surrogates from undecodable file names) become Python
    escapes such as `\\n`, so a file named "x\\n…: OK" cannot print a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Problem:
    """A bad line (or file, when `line_number` is 0) in a preference file."""

    path: Path
    line_number: int
    message: str

    def __str__(self) -> str:
        """`file:line: message` on one line (`printable`)."""
        where = f"{self.path}:{self.line_number}" if self.line_number else f"{self.path}"
        return printable(f"{where}: {self.message}")


def _path_problem(path: Path, error: OSError) -> Problem:
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return Problem(path, 0, "no such file or folder")
    return Problem(path, 0, f"not read: {error.strerror or error}")


def _folder_files(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The `*.jsonl` files of `folder`, in name order ("ana" before "ana (conflicted copy)"), and a problem for
    each one that is a symbolic link, which is not followed: the files in a folder of preferences are plain
    files of their own (a link `ben.jsonl → ana.jsonl` would count ana twice)."""
    with os.scandir(folder) as entries:
        names = sorted((e.name for e in entries if e.name.endswith(".jsonl")), key=lambda name: name[: -len(".jsonl")])
    files, problems = [], []
    for path in (folder / name for name in names):
        if os.path.islink(path):
            problems.append(Problem(path, 0, f"not read: a symbolic link{link_target(path)}; the files in a folder "
                                             "of preferences are plain files of their own, and links are not followed "
                                             "(name the file itself to read it)"))
            continue
        files.append(path)
    return files, problems


def preference_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand `paths` (files, or folders meaning all their `*.jsonl`) into regular files to read, each once.

    Each path that cannot be used is a problem, never a silent "no files": a missing path, a folder that
    cannot be listed (permission denied), a link inside a folder (`_folder_files`), anything that is not a
    regular file (a FIFO, a device: not opened), and a file reached a second time (the same path given twice, or
    another name of the same file: a hard link), which is read once.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    first_name: dict[object, Path] = {}  # (device, inode) → the name the file was read under
    for path in map(Path, paths):
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError as error:
            problems.append(_path_problem(path, error))
            continue
        candidates = [path]
        if is_folder:
            try:
                candidates, link_problems = _folder_files(path)
            except OSError as error:
                problems.append(Problem(path, 0, f"cannot read this folder: {error.strerror or error}; "
                                                 "none of its preference files was read"))
                continue
            problems.extend(link_problems)
        for candidate in candidates:
            try:
                info = check_regular_file(candidate)
            except OSError as error:
                problems.append(_path_problem(candidate, error))
                continue
            identity = (info.st_dev, info.st_ino) if info.st_ino else os.path.realpath(candidate)
            if identity in first_name:
                problems.append(Problem(candidate, 0, f"the same file as {first_name[identity]} (a path given twice, "
                                                      "or another name for it): read once"))
                continue
            first_name[identity] = candidate
            files.append(candidate)
    return files, problems


def _read_numbered_records(path: Path) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """All valid records of one file with their line numbers, in order, and a `Problem` per bad line.

    Bad lines: not UTF-8, not JSON (or nested too deeply to parse), not a valid record (a lone surrogate or more
    than `MAX_ANSWERS` answers included), an id seen before in the file, an undo naming no record of the file.
    An undo may come before its record (a hand-edited file): it takes it back all the same, as in the store.
    Lines end where a text editor ends them (`text_lines`: "\\n", "\\r\\n" or "\\r"; a BOM is not text).
    """
    try:
        with open(open_regular_file(Path(path)), "rb") as file:
            data = file.read()
    except OSError as error:
        return [], [Problem(Path(path), 0, f"cannot read: {error.strerror or error}")]
    numbered: list[tuple[int, dict]] = []
    problems: list[Problem] = []
    line_of: dict[str, int] = {}  # id → line number
    for number, raw in enumerate(text_lines(data), start=1):
        if not raw.strip():
            continue
        try:
            record = parse_record_bytes(raw)
            if record["id"] in line_of:
                raise ValueError(f"duplicate record id {record['id']!r} (line {line_of[record['id']]} has it too)")
        except ValueError as error:
            problems.append(Problem(Path(path), number, str(error)))
            continue
        line_of[record["id"]] = number
        numbered.append((number, record))
    for number, record in numbered:
        if "undo" in record and record["undo"] not in line_of:
            problems.append(Problem(Path(path), number, f"undo names record {record['undo']!r}, which is not in "
                                                        "this file"))
    kept = [(number, r) for number, r in numbered if "undo" not in r or r["undo"] in line_of]
    return kept, sorted(problems, key=lambda problem: problem.line_number)


def read_preference_file(path: Path) -> tuple[list[dict], list[Problem]]:
    """All valid records of one file in order (undo records included) and a `Problem` per bad line
    (`_read_numbered_records` says which lines are bad)."""
    numbered, problems = _read_numbered_records(path)
    return [record for _, record in numbered], problems


def _repeat_problem(path: Path, lines: list[int], first: tuple[Path, int], first_id: str) -> Problem:
    """One problem for the records of `path` (at `lines`) read before from another file (`first`: file, line)."""
    more = ""
    if len(lines) > 1:
        shown = ", ".join(map(str, lines[1:6])) + (" …" if len(lines) > 6 else "")
        more = f" and {len(lines) - 1} more of its records (lines {shown})"
    return Problem(path, lines[0], f"record {first_id!r} was read before from {first[0]}:{first[1]}{more}: each "
                                   "record is counted once (is this file a copy of that one?)")


def read_preference_files(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, list[dict]]], list[Problem]]:
    """Each file's valid records, every record once over all the files, and the problems.

    Records are identified by their `id`: one reached again in another file (a sync tool's "ana (conflicted
    copy).jsonl", a copy made by hand) is kept where it was read first and reported where it repeats, one
    problem per pair of files. The same file reached twice is read once (`preference_files`).
    """
    files, problems = preference_files(paths)
    first_seen: dict[str, tuple[Path, int]] = {}  # id → (file, line)
    result = []
    for path in files:
        numbered, file_problems = _read_numbered_records(path)
        problems.extend(file_problems)
        kept, repeats = [], {}  # repeats: earlier file → (lines here, the first repeated record's place and id)
        for number, record in numbered:
            first = first_seen.setdefault(record["id"], (path, number))
            if first[0] == path:
                kept.append(record)
            else:
                repeats.setdefault(first[0], ([], first, record["id"]))[0].append(number)
        problems.extend(_repeat_problem(path, lines, first, first_id) for lines, first, first_id in repeats.values())
        result.append((path, kept))
    return result, problems


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
    (ties, skips and undone records give none), each record once however many files hold it. Bad lines become
    problems; every valid line still loads.
    """
    from datasets import Dataset, Features, Value  # imported here: `datasets` takes a second to import

    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, problems = read_preference_files(paths)
    rows: list[dict] = []
    for record in effective_records([record for _, records in files for record in records]):
        rows.extend(record_pairs(record))
    features = Features({column: Value("string") for column in PAIR_COLUMNS})
    columns = {column: [row[column] for row in rows] for column in PAIR_COLUMNS}
    return Dataset.from_dict(columns, features=features), problems


def check_preference_files(paths: Iterable[str | Path]) -> int:
    """Print a summary per file and every problem as `file:line: message`, each on one line (`printable`);
    0 if no problems, else 1. Reads text only: no torch, no `datasets`."""
    files, problems = read_preference_files(paths)
    undone = {record["undo"] for _, records in files for record in records if "undo" in record}
    for path, records in files:
        kept = [r for r in records if "undo" not in r and r["id"] not in undone]
        rankings = sum("ranking" in r for r in kept)
        skips = sum("skipped" in r for r in kept)
        undos = sum("undo" in r for r in records)
        pairs = sum(len(record_pairs(r)) for r in kept)
        file_problems = sum(problem.path == path for problem in problems)
        print(printable(f"{path}: {rankings} rankings, {skips} skipped, {undos} undone, {pairs} pairs, "
                        f"{file_problems} problem(s)"))
    if not files and not problems:
        print("no preference files (*.jsonl) found")
    for problem in problems:
        print(problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
