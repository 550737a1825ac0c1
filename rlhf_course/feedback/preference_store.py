"""The preference store: people's and simulated annotators' rankings, kept safe on disk, loaded and checked.

Where rankings live
    One append-only JSONL file per annotator, `<folder>/<name>.jsonl`. People's rankings go to the folder the
    widget is given: in notebook 03 `human_preferences_dir()`, which is `$RLHF_PREFERENCES_DIR` or else
    `data/preferences/` (made at the first write; the course ships no rankings), in a class the class folder
    (`classroom`). Simulated annotators' go to `runs/<profile>/preferences/`; where nobody is at the notebook
    (`course.is_headless`: the runner, nbval), a stand-in drives notebook 03's widget into
    `runs/<profile>/preferences/widget-demo/`.

A ranking is a list of groups of answer indices, best → worst, a group holding tied answers:
`[[2], [0, 3], [1]]` says answer 2 is best, 0 and 3 tie, 1 is worst (what a ranking means and which pairs it
implies: `rankings`). A ranking holds at most `MAX_ANSWERS` = 64 answers (2,016 pairs when strict).

The three kinds of line in a preference file (one JSON object per line):

    {"id": "9f…", "time": "2026-11-27T10:00:00+00:00", "annotator": "ana", "source": "human",
     "checkpoint": "sft", "prompt": "...", "answers": ["...", "..."], "ranking": [[1], [0]]}
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "checkpoint": "sft",
     "prompt": "...", "answers": [...], "skipped": true}                      # a skip: no pairs
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "undo": "9f…"}  # drops record 9f…

Why it is built this way (human rankings are expensive and must never be lost):
- Each record is written as a whole line to a file opened with `O_APPEND`, while holding the lock file
  `<name>.jsonl.lock` beside it, and `os.fsync`ed before `submit` returns: a crashed kernel loses at most the
  ranking being made, and two processes appending to one file never interleave their lines. The lock is the
  `filelock` package's `FileLock` (flock on Unix, LockFileEx on Windows; where neither exists, its
  `SoftFileLock`, a marker file made with O_EXCL). The store reads under the lock too, so it never sees a
  write that is about to be taken back (below). (A simulated annotator's thousands of rankings go in with
  `submit_many`: one write, one fsync.)
- Nothing is ever overwritten or deleted. Undo appends an `undo` record; it takes back the record with its id
  wherever that is in the file (a hand-edited file may have moved it), for the store and the loaders alike.
  A line torn by a crash is reported as a problem and the next record starts on a new line. The one
  truncation: a write that fails part-way (disk full) takes its own bytes back, under the lock.
- The store never reads or writes through a link: a symbolic link (or a dangling one) named `<name>.jsonl`
  or `<name>.jsonl.lock` is refused (`O_NOFOLLOW` where the OS has it, and a look at the name before and after
  opening everywhere), and so is a file with a second name (a hard link), which may be outside the folder.
  The folder you name may itself be reached through links (a shared drive linked into your home).
- Lines are read as a text editor reads them: they end at "\\n", "\\r\\n" or "\\r" (JSON cannot hold a raw
  "\\r" inside a record, so nothing is cut), and a UTF-8 BOM at the start of a file is not part of the first
  line. U+2028, U+2029 and U+0085 inside a prompt are text, not line ends; they are written escaped so that
  other tools agree. A last line without its line end (a hand-edited file) is a record like any other.
- Loading never stops at a bad line: it becomes a `Problem` (`file:line: message`), the rest still loads.
  Bad lines include JSON nested too deeply to parse, text JSON can carry but UTF-8 cannot (a lone surrogate
  such as "\\ud800") and rankings of more than 64 answers: validation refuses to write any of them. Only
  regular files are read: a FIFO or a device named `*.jsonl` is a problem, never opened for reading (a FIFO
  would block, a device never ends).
- Records are identified by their `id`: the same record reached twice (a sync tool's "ana (conflicted
  copy).jsonl", a link `ben.jsonl → ana.jsonl`, a path given twice) is loaded once and reported.
- Annotator names become file names that Windows, macOS and Linux all accept (`validate_annotator_name`);
  they are compared NFKC-normalised and case-folded, and a name that only looks like another one in the same
  folder (Cyrillic "аna" beside Latin "ana") is refused.

Simplifications: duplicate submissions are detected per annotator file, not across annotators; a lock file on
a network drive protects only as far as that drive honours locks (each student writes only their own file).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import unicodedata
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock, Timeout

from rlhf_course.feedback.rankings import Ranking, answer_letter, ranking_to_pairs, validate_ranking
from rlhf_course.paths import repo_root, runs_dir

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "annotator", "checkpoint", "source"]

MAX_ANSWERS = 64  # answers one ranking may hold: at most 64·63/2 = 2,016 pairs (K = 2,000 made 2 M pairs, 1.3 GB)
LOCK_TIMEOUT_S = 60.0  # a write holds the lock for milliseconds: a minute means something is stuck


class PreferenceStoreError(RuntimeError):
    """A preference file that cannot be written (read-only folder, full disk …). Nothing was saved."""


# --------------------------------------------------------------------------------------------------
# Where preference files live
# --------------------------------------------------------------------------------------------------


def human_preferences_dir() -> Path:
    """`data/preferences/`: where the widget keeps people's rankings (`$RLHF_PREFERENCES_DIR` overrides); made at
    the first ranking, none ship with the course."""
    return Path(os.environ.get("RLHF_PREFERENCES_DIR") or repo_root() / "data" / "preferences")


def simulated_preferences_dir(profile_name: str) -> Path:
    """`runs/<profile>/preferences/`: simulated annotators' rankings, made again by every run."""
    return runs_dir(profile_name) / "preferences"


# --------------------------------------------------------------------------------------------------
# Annotator names: each becomes a file name, on any OS
# --------------------------------------------------------------------------------------------------

MAX_NAME_CHARACTERS = 64
MAX_FILE_NAME_BYTES = 255  # most file systems (ext4, APFS, NTFS counts 255 UTF-16 units: more than enough)
_LONGEST_SUFFIX = ".jsonl.replaced-20260101-000000-000000"  # the longest file name made from a name
MAX_NAME_BYTES = MAX_FILE_NAME_BYTES - len(_LONGEST_SUFFIX)  # 217 bytes of UTF-8
_INSIDE_ONLY = {" ", "-", ".", "\u200c", "\u200d"}  # allowed between word characters (ZWNJ/ZWJ: Persian, Indic)
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{d}" for d in range(10)), *(f"lpt{d}" for d in range(10))}
_NAME_RULE = ("use letters (with their accents and vowel signs), digits, and space, '-', '_' or '.' inside (no '/', "
              "'\\', ':', '..', leading or trailing dot; at most 64 characters) — it becomes a file name on every OS")


def _is_word_character(character: str) -> bool:
    """A letter or one of its marks (Unicode categories L and M: Hindi, Tamil, Bengali and Thai write vowels
    as marks), a decimal digit of any script, or "_"."""
    category = unicodedata.category(character)
    return category[0] in "LM" or category == "Nd" or character == "_"


def _describe(character: str) -> str:
    """`'а' (CYRILLIC SMALL LETTER A)`: a character as a person can tell it apart from look-alikes."""
    return f"{character!r} ({unicodedata.name(character, f'U+{ord(character):04X}')})"


def _name_character_problem(name: str) -> str | None:
    """Why `name`'s characters cannot make a file name on every OS, or None. Windows forbids <>:"/\\|?* and
    control characters, and a name ending in a dot or space; a leading dot hides a file on Unix; a name
    cannot start with a mark (it has no letter to sit on)."""
    if len(name) > MAX_NAME_CHARACTERS:
        return f"it has {len(name)} characters, more than {MAX_NAME_CHARACTERS}"
    for position, character in enumerate(name):
        at_end = position in (0, len(name) - 1)
        if _is_word_character(character) and not (position == 0 and unicodedata.category(character)[0] == "M"):
            continue
        if character in _INSIDE_ONLY and not at_end:
            continue
        where = "first" if position == 0 else "last" if position == len(name) - 1 else f"character {position + 1}"
        return f"the {where} character {_describe(character)} cannot be there"
    if ".." in name:
        return "'..' cannot be in it"
    return None


def _windows_device(name: str) -> str | None:
    """The reserved Windows device name (CON, NUL, COM1 …) `name.jsonl` would be, or None. Windows takes
    the part before the first dot, any case, trailing spaces ignored: "nul.x.jsonl" is the device NUL."""
    stem = name.split(".")[0].rstrip(" ").casefold()
    return stem.upper() if stem in _WINDOWS_DEVICES else None


def validate_annotator_name(name: str) -> str:
    """The name, stripped and NFKC-normalised, if every OS can store it as a file name; else a `ValueError` that
    says why. NFKC makes one spelling of what looks the same: "José" typed with a combining accent, fullwidth
    "ａｎａ" and "ana" become one name each time they are typed."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("annotator name is empty: type your name (letters, digits, space, '-', '_', '.')")
    name = unicodedata.normalize("NFKC", name).strip()
    problem = _name_character_problem(name)
    if problem is None and _windows_device(name):
        problem = f"{_windows_device(name)} is a device name on Windows, never a file"
    if problem is None and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = (f"it is {len(name.encode('utf-8'))} bytes in UTF-8, and a file name holds at most "
                   f"{MAX_FILE_NAME_BYTES} bytes, {MAX_NAME_BYTES} of them for the name: shorten it")
    if problem is not None:
        raise ValueError(f"annotator name {name!r} is not allowed: {problem}; {_NAME_RULE}")
    return name


def annotator_key(name: str) -> str:
    """How annotator names are compared: NFKC and case-folded. "ANA", "Ana" and "ana" are one annotator, and so
    are "Straße" and "STRASSE" (German writes ß as SS in capitals): one person typing their name two ways."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


# Cyrillic and Greek letters (case-folded) that look like Latin ones, in capitals or small letters; the zero-width
# joiners are invisible. Not all of Unicode's confusables (UTS #39), only the common ones a class would meet.
_LOOK_ALIKES = str.maketrans({
    **dict(zip("авекмнорстухѕіјһԁԛԝӏ", "abekmhopctyxsijhdqwl", strict=True)),
    **dict(zip("αβγεζηικμνορτυχϲϳ", "abyezhikmnoptyxcj", strict=True)),
    "ı": "i", "ȷ": "j", "\u200c": None, "\u200d": None,
})


def name_skeleton(name: str) -> str:
    """What a name looks like: its `annotator_key` with look-alike letters replaced by the Latin letter they look
    like (accents kept: "José" and "Jose" look different). Two names with one skeleton but different keys
    would be two files that a person cannot tell apart."""
    decomposed = unicodedata.normalize("NFD", annotator_key(name))  # "ё" = "е" + diaeresis: the letter is mapped
    return unicodedata.normalize("NFC", decomposed.translate(_LOOK_ALIKES))


def _names_in_folder(folder: Path) -> list[str]:
    """The annotator names that have a file (`<name>.jsonl`) in `folder`, sorted; none if it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name[: -len(".jsonl")] for entry in entries if entry.name.endswith(".jsonl"))
    except OSError:
        return []


def spelling_in_folder(folder: str | Path, name: str) -> str:
    """The spelling of the valid name `name` this folder already has a file for ("ana" for "ANA"), else `name`;
    a `ValueError` if `name` only looks like another annotator's name there (Cyrillic "аna" beside "ana")."""
    names = _names_in_folder(Path(folder))
    if name in names:
        return name
    same = [other for other in names if annotator_key(other) == annotator_key(name)]
    if same:
        return same[0]
    look_alike = next((other for other in names if name_skeleton(other) == name_skeleton(name)), None)
    if look_alike is not None:
        odd = ", ".join(_describe(c) for c in dict.fromkeys(name) if c not in look_alike)
        raise ValueError(f"annotator name {name!r} looks like {look_alike!r}, who already ranks in {folder}, but is "
                         f"another file: it has {odd}. Type your name with your keyboard's usual letters, or choose "
                         "a name that looks different")
    return name


# --------------------------------------------------------------------------------------------------
# Records: one line of a preference file
# --------------------------------------------------------------------------------------------------


def item_key(prompt: str, answers: list[str]) -> str:
    """A stable key for "this prompt with these answers in this order" (finds duplicate submissions)."""
    return hashlib.sha256(json.dumps([prompt, list(answers)], ensure_ascii=False).encode("utf-8")).hexdigest()


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
    """A `ValueError` unless `prompt` is a non-empty string and `answers` a list of 2 to `MAX_ANSWERS` strings
    (all of them valid text: see `validate_text`). The bound keeps a ranking's pairs few: K answers make up to
    K(K−1)/2 pairs, and one record of 4,000 answers once ran the loader out of memory."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: every ranking needs the prompt its answers reply to")
    if not isinstance(answers, (list, tuple)) or len(answers) < 2:
        raise ValueError(f"a ranking needs at least two answers, got {answers!r:.80}")
    if len(answers) > MAX_ANSWERS:
        raise ValueError(f"a ranking holds at most {MAX_ANSWERS} answers ({MAX_ANSWERS * (MAX_ANSWERS - 1) // 2:,} "
                         f"pairs), not {len(answers):,}: rank them in smaller groups")
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
    """One line of a file as bytes (its line end taken off) → a validated record, or `ValueError`.

    The one way the store and the loaders read a line, so that they agree on what is a record.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid UTF-8 (byte {error.start + 1} of the line: {error.reason})") from None
    return parse_record_line(text)


_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark: some Windows editors put it at the start of a file
_LINE_END = re.compile(rb"\r\n|\r|\n")  # what text editors take as a line end (Windows, old Mac, Unix)


def split_lines(data: bytes) -> list[bytes]:
    """`data` cut at every line end a text editor sees: "\\r\\n", "\\r" or "\\n". The last piece is what follows
    the last line end (empty when `data` ends with one). A record cannot be cut: JSON writes a "\\r" inside a
    string as the two characters \\r, and a raw one is not valid JSON."""
    return _LINE_END.split(data)


def text_lines(data: bytes) -> list[bytes]:
    """A whole file's lines as a text editor shows them: `split_lines`, after a BOM at the start of the file."""
    return split_lines(data[len(_BOM):] if data.startswith(_BOM) else data)


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
    """The ranking and skip records that no undo record names, in order. An undo takes back the record with
    its id wherever it is among `records`, before or after the undo (the store and the loaders agree)."""
    undone = {record["undo"] for record in records if "undo" in record}
    return [record for record in records if "undo" not in record and record["id"] not in undone]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# Opening files: only regular files, never through a link when writing
# --------------------------------------------------------------------------------------------------

# O_BINARY: Windows would otherwise write "\n" as "\r\n" and stop reading at Ctrl-Z. O_NOFOLLOW: Unix refuses to
# open a symbolic link (Windows has none: the lstat/fstat comparison in `_check_opened` stands in for it).
_BINARY = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NO_BLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opened to read would wait for a writer (Unix only)

_FILE_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


class UnsafeFileError(OSError):
    """A name in a folder the store writes to that could lead elsewhere: a symbolic link or a hard link."""


def _check_regular_mode(mode: int) -> None:
    """An `OSError` (EINVAL, saying what it is instead) unless `mode` is a regular file's."""
    if not stat.S_ISREG(mode):
        kind = next((name for is_kind, name in _FILE_KINDS if is_kind(mode)), "something else")
        raise OSError(errno.EINVAL, f"not a regular file but {kind}; preference files are plain files")


def _link_target(path: Path) -> str:
    """" to '<where it points>'" for a symbolic link, for messages ('' if that cannot be read)."""
    try:
        return f" to {os.readlink(path)!r}"
    except OSError:
        return ""


def _link_error(path: Path) -> UnsafeFileError:
    return UnsafeFileError(errno.ELOOP, f"{path.name} is a symbolic link{_link_target(path)}, and the store never "
                                        "reads or writes through a link (it could lead out of the folder)")


def _lstat_not_a_link(path: Path) -> os.stat_result | None:
    """`os.lstat(path)`, None if nothing has that name; an `UnsafeFileError` if it is a symbolic link (a
    dangling one too: opening it to append would create the file it points to)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise _link_error(path)
    return info


def _check_opened(path: Path, fd: int, writing: bool) -> None:
    """Whether the file opened as `fd` is a regular file that `path` still names (not swapped for a link in
    between) and, to be written, has no other name (a hard link made elsewhere would be written too)."""
    info = os.fstat(fd)
    _check_regular_mode(info.st_mode)
    if not os.path.samestat(info, _lstat_not_a_link(path) or info):
        raise UnsafeFileError(errno.ELOOP, f"{path.name} was replaced while being opened")
    if writing and info.st_nlink > 1:
        raise UnsafeFileError(errno.EMLINK, f"{path.name} has {info.st_nlink} names (hard links), so writing to it "
                                            "would also change it under another name, perhaps outside the folder; "
                                            "make it a file of its own (copy it, then move the copy over it)")


def _open_checked(path: Path, flags: int, writing: bool) -> int:
    """`os.open(path, flags)` without following a link, checked by `_check_opened`; closed again if refused."""
    try:
        fd = os.open(path, flags | _BINARY | _NO_FOLLOW | _NO_BLOCK, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW: it became a link after we looked
            raise _link_error(path) from None
        raise
    try:
        _check_opened(path, fd, writing)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_to_append(path: Path) -> tuple[int, bool]:
    """A descriptor to append to `path` (made if missing, with `O_EXCL`, which never follows a link) and whether
    it was made now. Never a link, a file with another name, a FIFO or a device (`_check_opened`)."""
    info = _lstat_not_a_link(path)
    if info is not None:
        _check_regular_mode(info.st_mode)  # looked at first: a FIFO is never opened
    flags = os.O_RDWR | os.O_APPEND
    try:
        return _open_checked(path, flags | os.O_CREAT | os.O_EXCL, writing=True), True
    except FileExistsError:
        return _open_checked(path, flags, writing=True), False


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that a file just made in it survives a crash (Unix; Windows cannot open a folder)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_regular_file(path: Path, follow_links: bool = True) -> os.stat_result:
    """The stat of `path` if it is a regular file (`os.stat`, or `os.lstat` refusing a link), else `OSError`;
    nothing is opened."""
    info = os.stat(path) if follow_links else _lstat_not_a_link(path)
    if info is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    _check_regular_mode(info.st_mode)
    return info


def _open_regular_file(path: Path, follow_links: bool = True) -> int:
    """A read-only fd of `path` if it is a regular file, else `OSError`; never blocks.

    Opening a FIFO for reading waits for a writer, and a device (`/dev/zero`) never ends: so `stat`
    first (nothing opened), and `O_NONBLOCK` plus `fstat` for a file swapped in between. The store reads
    its own file with `follow_links=False`; a loader reads what it is given.
    """
    _check_regular_file(path, follow_links)
    if not follow_links:
        return _open_checked(path, os.O_RDONLY, writing=False)
    fd = os.open(path, os.O_RDONLY | _NO_BLOCK | _BINARY)
    try:
        _check_regular_mode(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    return fd


# --------------------------------------------------------------------------------------------------
# The store: one annotator's append-only file
# --------------------------------------------------------------------------------------------------

_READ_ONLY_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS}


class PreferenceStore:
    """One annotator's append-only preference file `<folder>/<annotator>.jsonl`.

    >>> store = PreferenceStore("data/preferences", "ana")
    >>> store.submit("Write a story…", ["answer A", "answer B"], [[1], [0]], checkpoint="sft")

    The folder is created at the first write. Every write is validated first, then appended, flushed and
    fsynced before the method returns. A write that fails (read-only folder, full disk) raises one
    `PreferenceStoreError` with the path and advice; the file is unchanged (or the message says exactly what
    it now holds) and the caller still has the ranking, so it can be submitted again.

    The annotator's name is the file's name: "ANA" writes to `ana.jsonl` if that is there (one person, typed
    two ways: `annotator_key`), and a name that only looks like one already there is refused (`spelling_in_folder`).
    """

    def __init__(self, folder: str | Path, annotator: str, source: str = "human"):
        name = validate_annotator_name(annotator)
        if not isinstance(source, str) or not source:
            raise ValueError("source must be a non-empty string such as 'human' or 'simulated:gold'")
        self.source = validate_text(source, "the source")
        self.folder = Path(folder)
        self.annotator = spelling_in_folder(self.folder, name)
        self.path = self.folder / f"{self.annotator}.jsonl"
        self.lock_path = self.folder / f"{self.annotator}.jsonl.lock"
        self._records: list[dict] = []  # every valid line read so far, in file order
        # for duplicate checks without rescanning the file: item_key → ids of its rankings, and the undone ids
        self._ranking_ids: dict[str, list[str]] = {}
        self._undone: set[str] = set()
        self._offset = 0  # bytes of the file already read (always at a line boundary)

    # ---- the lock ------------------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold `<name>.jsonl.lock` (made if missing, never through a link) with `filelock.FileLock`: every
        process that writes this file, or reads it into a store, takes its turn."""
        _lstat_not_a_link(self.lock_path)  # FileLock opens it with O_NOFOLLOW too: this says why in words
        lock = FileLock(self.lock_path, timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise PreferenceStoreError(
                f"{self.lock_path} has been locked by another process for {LOCK_TIMEOUT_S:.0f} s (a notebook that "
                "hangs?): nothing was read or written, and your ranking is kept. Try again; if no notebook of yours "
                "is saving, delete that lock file") from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _link_error(self.lock_path) from None
            raise
        try:
            yield
        finally:
            lock.release()

    # ---- reading -------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Read what was appended since last time, holding the lock, so that a write being made, or being taken
        back after a failed fsync, is never seen. Nothing to do (one stat, no lock) if the file has not grown.
        In a folder this process may only read, there is no writer of ours to wait for: it reads unlocked."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._read_error(error) from error
        if stat.S_ISREG(info.st_mode) and info.st_size == self._offset:
            return
        with ExitStack() as held:
            try:
                held.enter_context(self._lock())
            except OSError as error:
                if isinstance(error, UnsafeFileError) or error.errno not in _READ_ONLY_ERRORS:
                    raise self._read_error(error) from error
            self._read_new_lines()

    def _read_new_lines(self) -> None:
        """Read the lines appended since the last call (by this or any other process); the caller holds the lock.

        Lines end as `split_lines` says, as for the loaders, and a BOM at the start of the file is skipped. The
        last line may lack its line end: if it is a whole record (a hand-edited file) it counts now; if not, it
        may be a line a program other than the store is still writing, so it is read again next time.
        """
        try:
            fd = _open_regular_file(self.path, follow_links=False)
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._read_error(error) from error
        with open(fd, "rb") as file:
            file.seek(self._offset)
            data = file.read()
        if self._offset == 0 and data.startswith(_BOM):
            data, self._offset = data[len(_BOM):], len(_BOM)
        *lines, last = split_lines(data)
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
            self._undone.add(record["undo"])  # wherever its record is, before or after it: `effective_records`
        elif "ranking" in record:
            self._ranking_ids.setdefault(item_key(record["prompt"], record["answers"]), []).append(record["id"])
        return True

    def records(self) -> list[dict]:
        """The effective ranking and skip records of this file (undone ones dropped), oldest first."""
        self._refresh()
        return effective_records(self._records)

    def has_ranked(self, prompt: str, answers: list[str]) -> bool:
        """Whether an effective (not undone) ranking of this prompt with these answers is in the file."""
        self._refresh()
        return self._ranked(item_key(prompt, answers))

    def _ranked(self, key: str) -> bool:
        """Whether the lines read so far hold an effective ranking of the item `key` (no reading)."""
        return any(i not in self._undone for i in self._ranking_ids.get(key, []))

    def _read_error(self, error: OSError) -> PreferenceStoreError:
        advice = ("Move that file away (the store did not make it)." if isinstance(error, UnsafeFileError)
                  else f"Is {self.folder} a folder you can read?")
        return PreferenceStoreError(f"cannot read {self.path}: {error.strerror or error}. {advice}")

    # ---- writing -------------------------------------------------------------------------------------

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

    @contextmanager
    def _locked_file(self) -> Iterator[int]:
        """The file opened to append (folder and file made if missing), holding the lock. Getting there can only
        fail before anything is written: one `PreferenceStoreError` that says so."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._write_error(error) from error
        with ExitStack() as held:
            try:
                held.enter_context(self._lock())
                fd = self._open_file()
            except OSError as error:
                raise self._write_error(error) from error
            held.callback(os.close, fd)
            yield fd

    def _open_file(self) -> int:
        """This annotator's file, opened to append (`_open_to_append`: never through a link). A file made now is
        made only if no look-alike of the name appeared since the store was made, and its folder is fsynced."""
        if not os.path.lexists(self.path) and spelling_in_folder(self.folder, self.annotator) != self.annotator:
            raise ValueError(f"a file for {spelling_in_folder(self.folder, self.annotator)!r} appeared in "
                             f"{self.folder} since you started as {self.annotator!r}: it is the same name, so start "
                             "again with that one")
        fd, created = _open_to_append(self.path)
        if created:
            try:
                _sync_folder(self.folder)
            except OSError:
                os.close(fd)
                raise
        return fd

    def _write_lines(self, fd: int, records: list[dict]) -> None:
        """Append whole lines, one per record, then fsync: all of them or none. Called with the file locked.

        `os.write` may take only part of the bytes (a full disk), so it runs until all are written. If a
        write or the fsync fails part-way, the file is truncated back to its size before: only our own
        bytes go (we hold the lock), and the file never keeps half a record that nobody was told about.
        """
        lines = [record_line(record) for record in records]
        try:
            size = os.fstat(fd).st_size
            start = b"\n" if size and _last_byte(fd, size) not in (b"\n", b"\r") else b""
        except OSError as error:
            raise self._write_error(error) from error
        data = start + b"".join(lines)  # a torn or hand-edited last line keeps its own line; ours starts fresh
        written = 0
        try:
            while written < len(data):
                count = os.write(fd, data[written:])
                if count <= 0:  # a regular file that takes nothing: do not loop for ever
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
            os.fsync(fd)
        except OSError as error:
            raise self._failed_write(fd, size, written, len(start), lines, error) from error
        self._read_new_lines()

    def _failed_write(self, fd: int, size: int, written: int, newline: int, lines: list[bytes],
                      error: OSError) -> PreferenceStoreError:
        """Take back the `written` bytes of a failed write (the file was `size` bytes; `newline` bytes came before
        `lines`) and say what the file holds now. No store has read them: stores read under the lock we hold."""
        total = newline + sum(len(line) for line in lines)
        if not written:
            return self._write_error(error)
        said = f"could not save to {self.path}: {error.strerror or error}. {written} of {total} bytes had been appended"
        try:
            os.ftruncate(fd, size)
        except OSError as truncate_error:
            reason = truncate_error.strerror or truncate_error
            return PreferenceStoreError(f"{said}, and taking them back failed too ({reason}): "
                                        f"{self._what_stayed(size, written - newline, lines)}")
        try:
            os.fsync(fd)
        except OSError as sync_error:
            return PreferenceStoreError(
                f"{said}; they were taken back, so the file holds nothing of this ranking ({size} bytes, as before), "
                f"but the disk failed again when asked to keep that ({sync_error.strerror or sync_error}): it may not "
                "keep what it is told. Your ranking is kept: check the disk, and the file with `python -m rlhf_course "
                f"prefs check {self.folder}`, before you submit it again.")
        return PreferenceStoreError(
            f"{said}; they were taken back, so the file is as it was ({size} bytes) and holds nothing of this ranking. "
            "Your ranking is kept: free some space (or choose another folder) and submit again."
        )

    def _what_stayed(self, size: int, written: int, lines: list[bytes]) -> str:
        """What a failed write that could not be taken back left in the file, in words: the records whose JSON
        is whole count (a last line needs no line end); a piece of one is a bad line the loaders skip."""
        if written <= 0:
            return ("only a line end went in, which the loaders skip: the file holds nothing of this ranking. Your "
                    "ranking is kept: free some space and submit again.")
        whole = _whole_lines(lines, written)
        check = f"check the file with `python -m rlhf_course prefs check {self.folder}`"
        if whole == len(lines):
            what = "the whole ranking is" if len(lines) == 1 else f"all {len(lines)} records are"
            return (f"{what} in the file after byte {size}, and every reader now sees it, but the disk "
                    f"did not confirm that it is stored (fsync failed), so it may not survive a crash. Do not submit "
                    f"it again (it would be a duplicate); {check}.")
        saved = f"{whole} of these {len(lines)} records are whole in the file and count; after them " if whole else ""
        return (f"{saved}the file now ends with an incomplete line after byte {size}, which the loaders report as a "
                "bad line and skip; every earlier record is intact and the next one starts on a new line. Your "
                "ranking is not saved and is kept: free some space and submit again.")

    def _write_error(self, error: OSError) -> PreferenceStoreError:
        advice = ("move that file away (the store did not make it) and submit again"
                  if isinstance(error, UnsafeFileError)
                  else "choose a folder you can write to (or fix its permissions) and submit again")
        return PreferenceStoreError(f"could not save to {self.path}: {error.strerror or error}. Nothing was written "
                                    f"and your ranking is kept: {advice}.")

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.folder)!r}, {self.annotator!r}, source={self.source!r})"


def _last_byte(fd: int, size: int) -> bytes:
    """The last byte of a file of `size` bytes (`os.pread` exists on Unix only)."""
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1)


def _whole_lines(lines: list[bytes], written: int) -> int:
    """How many of `lines`, written in order, are whole in their first `written` bytes, their "\\n" aside."""
    whole = end = 0
    for line in lines:
        end += len(line)
        if written < end - 1:
            break
        whole += 1
    return whole


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
            problems.append(Problem(path, 0, f"not read: a symbolic link{_link_target(path)}; the files in a folder "
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
                info = _check_regular_file(candidate)
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
        with open(_open_regular_file(Path(path)), "rb") as file:
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
