"""The preference store: one annotator's rankings, appended safely to their own file (`PreferenceStore`).

Where rankings live
    One append-only JSONL file per annotator, `<folder>/<name>.jsonl`. People's rankings go to the folder the
    widget is given: in notebook 03 `human_preferences_dir()`, which is `$RLHF_PREFERENCES_DIR` or else
    `data/preferences/` (made at the first write; the course ships no rankings), in a class the class folder
    (`classroom`). Simulated annotators' go to `runs/<profile>/preferences/`; where nobody is at the notebook
    (`course.is_headless`: the runner, nbval), a stand-in drives notebook 03's widget into
    `runs/<profile>/preferences/widget-demo/`.

A ranking is a list of groups of answer indices, best → worst, a group holding tied answers:
`[[2], [0, 3], [1]]` says answer 2 is best, 0 and 3 tie, 1 is worst (what a ranking means and which pairs it
implies: `rankings`). What a line of the file holds, and what makes it valid: `preference_records`. Reading
whole files and folders into pairs, and `prefs check`: `preference_loading`. Annotator names: `annotator_names`.

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
  The folder you name may itself be reached through links (a shared drive linked into your home). How files
  are opened, locked and fsynced: `safe_files`.
- The store reads lines as the loaders do: they end at "\\n", "\\r\\n" or "\\r", a UTF-8 BOM at the start of the
  file is not text (`safe_files.split_lines`), and a last line without its line end (a hand-edited file) is a
  record like any other. Bad lines are left to the loaders to report.
- Annotator names become file names that Windows, macOS and Linux all accept (`annotator_names`); "ANA"
  writes to ana.jsonl if that is there, and a name that only looks like another one in the folder is refused.

Simplifications: duplicate submissions are detected per annotator file, not across annotators; a lock file on
a network drive protects only as far as that drive honours locks (each student writes only their own file).
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from filelock import Timeout

from rlhf_course.feedback.annotator_names import spelling_in_folder, validate_annotator_name
from rlhf_course.feedback.preference_records import (
    check_checkpoint,
    effective_records,
    item_key,
    parse_record_bytes,
    record_line,
    validate_item,
    validate_text,
)
from rlhf_course.feedback.rankings import Ranking, validate_ranking
from rlhf_course.feedback.safe_files import (
    BOM,
    UnsafeFileError,
    acquire_lock,
    open_regular_file,
    open_to_append,
    split_lines,
    sync_folder,
)
from rlhf_course.paths import repo_root, runs_dir

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


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        try:
            lock = acquire_lock(self.lock_path, LOCK_TIMEOUT_S)
        except Timeout:
            raise PreferenceStoreError(
                f"{self.lock_path} has been locked by another process for {LOCK_TIMEOUT_S:.0f} s (a notebook that "
                "hangs?): nothing was read or written, and your ranking is kept. Try again; if no notebook of yours "
                "is saving, delete that lock file") from None
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
            fd = open_regular_file(self.path, follow_links=False)
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._read_error(error) from error
        with open(fd, "rb") as file:
            file.seek(self._offset)
            data = file.read()
        if self._offset == 0 and data.startswith(BOM):
            data, self._offset = data[len(BOM):], len(BOM)
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
        validate_text(check_checkpoint(checkpoint), "the checkpoint")
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
        """This annotator's file, opened to append (`safe_files.open_to_append`: never through a link). A file made
        now is made only if no look-alike of the name appeared since the store was made, and its folder is fsynced."""
        if not os.path.lexists(self.path) and spelling_in_folder(self.folder, self.annotator) != self.annotator:
            raise ValueError(f"a file for {spelling_in_folder(self.folder, self.annotator)!r} appeared in "
                             f"{self.folder} since you started as {self.annotator!r}: it is the same name, so start "
                             "again with that one")
        fd, created = open_to_append(self.path)
        if created:
            try:
                sync_folder(self.folder)
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
