"""Safe files: how the preference store and the class folder open, write, lock and split files.

Folders of rankings are often shared (a class folder every student can write to, a synced drive), so a name in
them may lead elsewhere: a symbolic link to any file, a hard link (a second name of a file that lives outside
the folder), a FIFO that blocks whoever opens it, a device that never ends. Everything here refuses those:

- `file_kind`: what a name is when it is not a regular file; `check_regular_mode` and `not_plain_because`
  (the class folder's stricter rule: one name only) say it in words.
- Opening: never through a symbolic link (`O_NOFOLLOW` where the OS has it, and a look at the name before and
  after opening everywhere), never waiting (`O_NONBLOCK`), creating only with `O_EXCL`
  (`open_checked`, `open_to_append`, `open_regular_file`, `read_plain_file`, `write_new_file`).
- Durability: `sync_folder` fsyncs a folder after a file is made or renamed in it; `set_aside` renames a name
  aside instead of deleting or overwriting it.
- `acquire_lock`: the `filelock` package's `FileLock` beside a file (flock on Unix, LockFileEx on Windows, a
  marker file made with O_EXCL where neither exists), never through a link.
- `split_lines`, `text_lines`: lines as a text editor sees them ("\\n", "\\r\\n" or "\\r"; a UTF-8 BOM is not text).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import uuid
from datetime import datetime
from pathlib import Path

from filelock import FileLock

# O_BINARY: Windows would otherwise write "\n" as "\r\n" and stop reading at Ctrl-Z. O_NOFOLLOW: Unix refuses to
# open a symbolic link (Windows has none: the lstat/fstat comparison in `check_opened` stands in for it).
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0) | _CLOEXEC
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NO_BLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opened to read would wait for a writer (Unix only)
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | _CLOEXEC  # never a file someone put there

_FILE_KINDS = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


class UnsafeFileError(OSError):
    """A name in a folder the store writes to that could lead elsewhere: a symbolic link or a hard link."""


class NotPlainFileError(ValueError):
    """A name of a shared folder that is not a plain file of it (`not_plain_because`), or one too big to read."""


# --------------------------------------------------------------------------------------------------
# What a name is
# --------------------------------------------------------------------------------------------------


def file_kind(mode: int) -> str | None:
    """What `mode` (an `os.stat` or `os.lstat` mode) is when it is not a regular file: "a symbolic link",
    "a folder", "a FIFO (named pipe)", a device, a socket or "something else"; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for is_kind, name in _FILE_KINDS if is_kind(mode)), "something else")


def check_regular_mode(mode: int) -> None:
    """An `OSError` (EINVAL, saying what it is instead) unless `mode` is a regular file's."""
    kind = file_kind(mode)
    if kind is not None:
        raise OSError(errno.EINVAL, f"not a regular file but {kind}; preference files are plain files")


# Why each kind is refused in a folder everyone in a class can write to.
_RISK_IN_SHARED_FOLDER = {"a symbolic link": ", which could lead to any file outside the class folder",
                          "a FIFO (named pipe)": ", which would block whoever opens it"}


def not_plain_because(info: os.stat_result) -> str | None:
    """Why a name of the class folder (its `os.lstat`) is not a plain file of the folder; None when it is one.

    Everyone in the class can write to the folder, so a name in it may lead elsewhere: a symbolic link to any
    file, a hard link (a second name of a file that lives outside the folder), a FIFO that blocks whoever
    opens it, a device that never ends. The class reads and writes only plain files with one name.
    """
    kind = file_kind(info.st_mode)
    if kind is not None:
        return kind + _RISK_IN_SHARED_FOLDER.get(kind, "")
    if info.st_nlink > 1:
        return (f"a hard link (one file with {info.st_nlink} names), which could be a file from outside the "
                "class folder")
    return None


def link_target(path: Path) -> str:
    """" to '<where it points>'" for a symbolic link, for messages ('' if that cannot be read)."""
    try:
        return f" to {os.readlink(path)!r}"
    except OSError:
        return ""


def link_error(path: Path) -> UnsafeFileError:
    """The store's refusal of a symbolic link named `path`."""
    return UnsafeFileError(errno.ELOOP, f"{path.name} is a symbolic link{link_target(path)}, and the store never "
                                        "reads or writes through a link (it could lead out of the folder)")


def lstat_not_a_link(path: Path) -> os.stat_result | None:
    """`os.lstat(path)`, None if nothing has that name; an `UnsafeFileError` if it is a symbolic link (a
    dangling one too: opening it to append would create the file it points to)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise link_error(path)
    return info


def check_regular_file(path: Path, follow_links: bool = True) -> os.stat_result:
    """The stat of `path` if it is a regular file (`os.stat`, or `os.lstat` refusing a link), else `OSError`;
    nothing is opened."""
    info = os.stat(path) if follow_links else lstat_not_a_link(path)
    if info is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    check_regular_mode(info.st_mode)
    return info


# --------------------------------------------------------------------------------------------------
# Opening: only regular files, never through a link when writing
# --------------------------------------------------------------------------------------------------


def check_opened(path: Path, fd: int, writing: bool) -> None:
    """Whether the file opened as `fd` is a regular file that `path` still names (not swapped for a link in
    between) and, to be written, has no other name (a hard link made elsewhere would be written too)."""
    info = os.fstat(fd)
    check_regular_mode(info.st_mode)
    if not os.path.samestat(info, lstat_not_a_link(path) or info):
        raise UnsafeFileError(errno.ELOOP, f"{path.name} was replaced while being opened")
    if writing and info.st_nlink > 1:
        raise UnsafeFileError(errno.EMLINK, f"{path.name} has {info.st_nlink} names (hard links), so writing to it "
                                            "would also change it under another name, perhaps outside the folder; "
                                            "make it a file of its own (copy it, then move the copy over it)")


def open_checked(path: Path, flags: int, writing: bool) -> int:
    """`os.open(path, flags)` without following a link, checked by `check_opened`; closed again if refused."""
    try:
        fd = os.open(path, flags | _BINARY | _NO_FOLLOW | _NO_BLOCK, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW: it became a link after we looked
            raise link_error(path) from None
        raise
    try:
        check_opened(path, fd, writing)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_to_append(path: Path) -> tuple[int, bool]:
    """A descriptor to append to `path` (made if missing, with `O_EXCL`, which never follows a link) and whether
    it was made now. Never a link, a file with another name, a FIFO or a device (`check_opened`)."""
    info = lstat_not_a_link(path)
    if info is not None:
        check_regular_mode(info.st_mode)  # looked at first: a FIFO is never opened
    flags = os.O_RDWR | os.O_APPEND
    try:
        return open_checked(path, flags | os.O_CREAT | os.O_EXCL, writing=True), True
    except FileExistsError:
        return open_checked(path, flags, writing=True), False


def open_regular_file(path: Path, follow_links: bool = True) -> int:
    """A read-only fd of `path` if it is a regular file, else `OSError`; never blocks.

    Opening a FIFO for reading waits for a writer, and a device (`/dev/zero`) never ends: so `stat`
    first (nothing opened), and `O_NONBLOCK` plus `fstat` for a file swapped in between. The store reads
    its own file with `follow_links=False`; a loader reads what it is given.
    """
    check_regular_file(path, follow_links)
    if not follow_links:
        return open_checked(path, os.O_RDONLY, writing=False)
    fd = os.open(path, os.O_RDONLY | _NO_BLOCK | _BINARY)
    try:
        check_regular_mode(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def read_plain_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path` if it is a plain file of the class folder (`not_plain_because`) of at most
    `max_bytes`; else a `NotPlainFileError` saying what it is (`FileNotFoundError` when there is none).

    `lstat` looks at the name without following it; the open refuses a link and never waits; `fstat` checks
    that the file opened is the one looked at, in case another was put in its place in between.
    """
    info = os.lstat(path)
    reason = not_plain_because(info)
    if reason:
        raise NotPlainFileError(f"{path} is {reason}, not a plain file")
    if info.st_size > max_bytes:
        raise NotPlainFileError(f"{path} is {info.st_size / 1e6:.1f} MB, more than the {max_bytes / 1e6:g} MB it "
                                "may be")
    try:
        fd = os.open(path, os.O_RDONLY | _NO_FOLLOW | _NO_BLOCK | _CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link put there after the lstat
            raise NotPlainFileError(f"{path} changed while it was opened: it is now a symbolic link") from None
        raise
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not_plain_because(opened):
            raise NotPlainFileError(f"{path} changed while it was opened: another file was put in its place")
        with open(fd, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise NotPlainFileError(f"{path} grew past the {max_bytes / 1e6:g} MB it may be while it was read")
    return data


# --------------------------------------------------------------------------------------------------
# Writing: new files only, renamed into place, fsynced
# --------------------------------------------------------------------------------------------------


def write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """A new file `.<name>.<random>.tmp` in `folder` holding `data`, fsynced. Made with O_EXCL and O_NOFOLLOW:
    never a file someone else put there, nor one a link leads to."""
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, _CREATE_NEW, 0o644)
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def set_aside(path: Path) -> Path:
    """Rename whatever `path` is (a file; a link, FIFO or folder someone put there) to
    `<name>.replaced-<time>` beside it: renamed, never opened or copied, so nothing behind a link is read,
    nothing is written through one, and nothing is lost. Returns the new name."""
    stamp = f"{datetime.now():%Y%m%d-%H%M%S-%f}"
    aside, number = path.with_name(f"{path.name}.replaced-{stamp}"), 1
    while os.path.lexists(aside):
        aside, number = path.with_name(f"{path.name}.replaced-{stamp}-{number}"), number + 1
    os.rename(path, aside)
    return aside


def sync_folder(folder: Path, must_succeed: bool = True) -> None:
    """fsync `folder`, so that a file made or renamed in it survives a crash (Unix; Windows cannot open a folder).

    The store passes `must_succeed=True`: a ranking whose new file may not survive is reported, not kept quiet.
    Replacing an assignment passes False: the new one is in place either way, and a folder that cannot be
    synced (some network drives) must not stop a class.
    """
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        if must_succeed:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if must_succeed:
            raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# The lock beside a file
# --------------------------------------------------------------------------------------------------


def acquire_lock(lock_path: Path, timeout_s: float) -> FileLock:
    """`filelock.FileLock(lock_path)` acquired (the lock file made if missing, never through a link); the caller
    releases it. `filelock.Timeout` after `timeout_s` seconds; an `UnsafeFileError` for a link."""
    lstat_not_a_link(lock_path)  # FileLock opens it with O_NOFOLLOW too: this says why in words
    lock = FileLock(lock_path, timeout=timeout_s)
    try:
        lock.acquire()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise link_error(lock_path) from None
        raise
    return lock


# --------------------------------------------------------------------------------------------------
# Lines as a text editor sees them
# --------------------------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark: some Windows editors put it at the start of a file
_LINE_END = re.compile(rb"\r\n|\r|\n")  # what text editors take as a line end (Windows, old Mac, Unix)


def split_lines(data: bytes) -> list[bytes]:
    """`data` cut at every line end a text editor sees: "\\r\\n", "\\r" or "\\n". The last piece is what follows
    the last line end (empty when `data` ends with one). A record cannot be cut: JSON writes a "\\r" inside a
    string as the two characters \\r, and a raw one is not valid JSON."""
    return _LINE_END.split(data)


def text_lines(data: bytes) -> list[bytes]:
    """A whole file's lines as a text editor shows them: `split_lines`, after a BOM at the start of the file."""
    return split_lines(data[len(BOM):] if data.startswith(BOM) else data)
