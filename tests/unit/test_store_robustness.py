"""What a reliability probe of the preference store found, one section per defect.

The rule these tests hold the store and the loaders to: human rankings are never overwritten or dropped;
every record ever acknowledged stays loadable whatever else is in the folder; bad input gets one clear
message naming file and line, and nothing is lost.

These tests run as root, and root ignores permissions, so a folder that cannot be listed is simulated by
patching `os.scandir` / `os.stat` to raise PermissionError, and a full disk by patching `os.write`.
Anything that could block (a FIFO) runs in a thread with a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading

import pytest

from rlhf_course.feedback.preference_loading import check_preference_files, load_preferences, read_preference_file
from rlhf_course.feedback.preference_records import parse_record_line, record_line
from rlhf_course.feedback.preference_store import PreferenceStore, PreferenceStoreError

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b"]


def hand_record(record_id: str = "hand-1", **fields) -> dict:
    """A valid ranking record as someone might write it by hand (or an older tool did)."""
    return {"id": record_id, "time": "2026-01-01T00:00:00+00:00", "annotator": "ana", "source": "human",
            "checkpoint": "sft", "prompt": PROMPT, "answers": ANSWERS, "ranking": [[0], [1]], **fields}


def problem_lines(problems):
    return [(p.path.name, p.line_number) for p in problems]


# ---- 1. U+2028, U+2029, U+0085 are text, not line ends -------------------------------------------------

SEPARATORS = pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"], ids=["U+2028", "U+2029", "U+0085"])


@SEPARATORS
def test_a_line_separator_in_the_text_keeps_the_record_visible(tmp_path, separator):
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    prompt = f"Write a story.{separator}Make it short."
    answers = [f"one{separator}two", "three"]
    second = store.submit(prompt, answers, [[1], [0]], "sft")
    again = PreferenceStore(tmp_path, "ana")  # another kernel: reads the file from the start
    assert again.records() == [first, second] and again.has_ranked(prompt, answers)
    with pytest.raises(ValueError, match="already ranked"):
        again.submit(prompt, answers, [[0], [1]], "sft")
    assert again.undo_last() == second  # the newest record, not the one before it
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 1


@SEPARATORS
def test_line_separators_are_written_escaped(tmp_path, separator):
    store = PreferenceStore(tmp_path, "ana")
    record = store.submit(f"a{separator}b", ANSWERS, [[0], [1]], "sft")
    data = store.path.read_bytes()
    assert separator.encode("utf-8") not in data and data.count(b"\n") == 1
    [line] = store.path.read_text(encoding="utf-8").splitlines()  # any tool that splits lines sees one record
    assert json.loads(line) == record


@SEPARATORS
def test_raw_line_separators_already_on_disk_still_load(tmp_path, separator):
    record = hand_record(prompt=f"a{separator}b", answers=[f"c{separator}", "d"])
    path = tmp_path / "ana.jsonl"
    path.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    assert separator.encode("utf-8") in path.read_bytes()
    store = PreferenceStore(tmp_path, "ana")
    assert store.records() == [record] and store.has_ranked(record["prompt"], record["answers"])
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 1 and dataset[0]["chosen"] == f"c{separator}"


# ---- 2. a lone surrogate: valid JSON, not text ---------------------------------------------------------


@pytest.mark.parametrize("field", ["prompt", "answer", "checkpoint"])
def test_a_lone_surrogate_is_refused_at_submission(tmp_path, field):
    store = PreferenceStore(tmp_path, "ana")
    prompt, answers, checkpoint = PROMPT, list(ANSWERS), "sft"
    if field == "prompt":
        prompt += "\ud800"
    elif field == "answer":
        answers[1] += "\udfff"
    else:
        checkpoint += "\ud800"
    with pytest.raises(ValueError, match="lone surrogate"):
        store.submit(prompt, answers, [[0], [1]], checkpoint)
    with pytest.raises(ValueError, match="lone surrogate"):
        store.skip(prompt, answers, checkpoint)
    assert not store.path.exists()


def test_validation_refuses_a_lone_surrogate():
    with pytest.raises(ValueError, match=r"the prompt contains '\\ud800' at character 3: a lone surrogate"):
        parse_record_line(json.dumps(hand_record(prompt="ab\ud800")))
    with pytest.raises(ValueError, match="field 'annotator' contains"):
        parse_record_line(json.dumps(hand_record(annotator="\udc00")))


def test_a_lone_surrogate_line_is_one_problem_and_every_other_record_loads(tmp_path, capsys):
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    with open(store.path, "a", encoding="utf-8") as file:
        file.write(json.dumps(hand_record(prompt="bad \ud800 text")) + "\n")  # JSON writes it as "\ud800"
    second = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")  # the store still works
    assert PreferenceStore(tmp_path, "ana").records() == [first, second]
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS, [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 3
    assert problem_lines(problems) == [("ana.jsonl", 2)] and "lone surrogate" in problems[0].message
    assert check_preference_files([tmp_path]) == 1
    out = capsys.readouterr().out
    assert f"{store.path}:2: the prompt contains '\\ud800'" in out and "1 problem(s)" in out


# ---- 3. JSON nested too deeply for Python's parser ----------------------------------------------------


def test_deeply_nested_json_is_a_bad_line_not_a_crash(tmp_path, capsys):
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    with open(store.path, "a", encoding="utf-8") as file:
        file.write('{"id": ' + "[" * 5000 + "]" * 5000 + "}\n")
    second = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert PreferenceStore(tmp_path, "ana").records() == [first, second]
    records, problems = read_preference_file(store.path)
    assert records == [first, second]
    assert problem_lines(problems) == [("ana.jsonl", 2)] and "nested too deeply" in problems[0].message
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2 and problem_lines(problems) == [("ana.jsonl", 2)]
    assert check_preference_files([tmp_path]) == 1
    assert f"{store.path}:2: JSON nested too deeply" in capsys.readouterr().out


# ---- 4. a folder that cannot be read is a problem, not "no files, OK" ------------------------------------


def refuse_for(monkeypatch, name, path):
    """Make `os.<name>(path)` raise PermissionError, as for a non-root user; other paths work as usual."""
    real = getattr(os, name)

    def refuse(target, *args, **kwargs):
        if os.fspath(target) == os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, name, refuse)


def test_a_folder_that_cannot_be_listed_is_a_problem(tmp_path, monkeypatch, capsys):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    refuse_for(monkeypatch, "scandir", tmp_path)
    assert check_preference_files([tmp_path]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}: cannot read this folder: Permission denied" in out
    assert "no preference files" not in out and "OK" not in out
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 0 and [str(p) for p in problems] == [
        f"{tmp_path}: cannot read this folder: Permission denied; none of its preference files was read"]


def test_a_path_that_cannot_be_looked_at_is_a_problem(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "prefs"
    PreferenceStore(folder, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    refuse_for(monkeypatch, "stat", folder)  # what a folder inside an unreadable one gives
    assert check_preference_files([folder]) == 1
    assert f"{folder}: not read: Permission denied" in capsys.readouterr().out


def test_a_folder_under_a_file_or_missing_is_a_problem(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert check_preference_files([tmp_path / "a-file" / "prefs", tmp_path / "missing"]) == 1
    out = capsys.readouterr().out
    assert out.count("no such file or folder") == 2 and "OK" not in out


# ---- 5. a last line without its newline is a record ---------------------------------------------------


def test_a_last_line_without_a_newline_is_a_record(tmp_path):
    path = tmp_path / "ana.jsonl"
    hand = hand_record()
    path.write_text(json.dumps(hand), encoding="utf-8")  # hand-edited: no newline at the end
    store = PreferenceStore(tmp_path, "ana")
    assert store.records() == [hand] and store.has_ranked(PROMPT, ANSWERS)
    with pytest.raises(ValueError, match="already ranked"):
        store.submit(PROMPT, ANSWERS, [[1], [0]], "sft")
    other = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert path.read_text(encoding="utf-8").split("\n")[:2] == [json.dumps(hand), json.dumps(other, ensure_ascii=False)]
    assert PreferenceStore(tmp_path, "ana").records() == [hand, other]
    assert store.undo_last() == other and store.undo_last() == hand and store.undo_last() is None
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 0


def test_an_incomplete_last_line_is_read_again_once_it_is_complete(tmp_path):
    """A line without its newline that is not yet a record may be one another process is writing."""
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    line = json.dumps(hand_record()) + "\n"
    with open(store.path, "a", encoding="utf-8") as file:
        file.write(line[:20])
        file.flush()
        assert store.records() == [first]
        file.write(line[20:])
    assert store.records() == [first, hand_record()]


# ---- 6. a write that fails part-way (full disk) ------------------------------------------------------


def is_lock_file(fd: int) -> bool:
    """Whether `fd` is the lock's own file: without `fcntl`, filelock's soft lock writes a marker file, which the
    fault injections below must leave alone (they fail the preference file's writes, not the lock's)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}").endswith(".lock")
    except OSError:  # no /proc: there, with fcntl, the lock writes nothing
        return False


def failing_write(monkeypatch, after_bytes: int, error=errno.ENOSPC):
    """Patch `os.write`: the first call writes only `after_bytes` bytes, the next raises `error`."""
    real_write = os.write
    calls = []

    def write(fd, data):
        if is_lock_file(fd):
            return real_write(fd, data)
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:after_bytes])
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "write", write)
    return calls


def test_a_write_that_fails_part_way_is_taken_back(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    before = store.path.read_bytes()
    with monkeypatch.context() as patch:
        failing_write(patch, after_bytes=40)
        with pytest.raises(PreferenceStoreError) as raised:
            store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    message = str(raised.value)
    assert "No space left on device" in message and "40 of" in message and "taken back" in message
    assert "Nothing was written" not in message and f"as it was ({len(before)} bytes)" in message
    assert store.path.read_bytes() == before
    assert store.records() == [kept]
    again = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")  # space again: the same ranking goes in
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 2 and store.records() == [kept, again]


def test_a_failed_fsync_is_taken_back(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    before = store.path.read_bytes()
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(PreferenceStoreError, match="Input/output error.*taken back"):
        store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert store.path.read_bytes() == before and store.records() == [kept]


def refuse_truncate(fd, length):
    raise OSError(errno.EIO, "I/O error")


def test_when_taking_back_fails_the_message_says_what_is_in_the_file(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    size = store.path.stat().st_size
    with monkeypatch.context() as patch:
        failing_write(patch, after_bytes=40)
        patch.setattr(os, "ftruncate", refuse_truncate)
        with pytest.raises(PreferenceStoreError) as raised:
            store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    message = str(raised.value)
    assert "40 of" in message and "taking them back failed too (I/O error)" in message
    assert f"incomplete line after byte {size}" in message and "submit again" in message
    assert store.path.stat().st_size == size + 40  # exactly what the message says
    again = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert store.records() == [kept, again]
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2 and problem_lines(problems) == [("ana.jsonl", 2)]


def fsync_failing(monkeypatch, failures: int, before_failing=lambda: None):
    """Patch `os.fsync`: the first `failures` calls run `before_failing()` and raise EIO, later ones work."""
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) <= failures:
            before_failing()
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_second_tab_never_sees_a_write_that_is_taken_back(tmp_path, monkeypatch):
    """Row 10: the write is in the file when its fsync fails; a second tab reading then waits for the lock,
    so it never counts the ranking that is taken back a moment later (it did, then accepted a duplicate)."""
    tab1, tab2 = PreferenceStore(tmp_path, "ana"), PreferenceStore(tmp_path, "ana")
    kept = tab1.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert tab2.records() == [kept]
    reading = {}

    def second_tab_reads():  # while the ranking's bytes are in the file and the writer holds the lock
        reader = threading.Thread(target=lambda: reading.setdefault("records", tab2.records()))
        reader.start()
        reader.join(0.5)
        reading["waited"], reading["thread"] = reader.is_alive(), reader
        assert os.path.getsize(tab1.path) > len(record_line(kept))  # the bytes are there to be seen

    with monkeypatch.context() as patch:
        fsync_failing(patch, 1, second_tab_reads)
        with pytest.raises(PreferenceStoreError, match="taken back"):
            tab1.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
        reading["thread"].join(10)
    assert reading["waited"] and reading["records"] == [kept]  # no phantom ranking in the second tab
    again = tab1.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")  # the student submits again, as told
    assert tab2.records() == [kept, again]
    with pytest.raises(ValueError, match="already ranked"):
        tab2.submit(PROMPT + "!", ANSWERS, [[0], [1]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 2


def test_when_the_fsync_after_taking_back_fails_the_message_says_the_file_holds_nothing(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    before = store.path.read_bytes()
    with monkeypatch.context() as patch:
        fsync_failing(patch, 2)  # the write's fsync, then the one after the truncate
        with pytest.raises(PreferenceStoreError) as raised:
            store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    message = str(raised.value)
    assert f"taken back, so the file holds nothing of this ranking ({len(before)} bytes, as before)" in message
    assert "the disk failed again" in message and "prefs check" in message
    assert "is in the file" not in message and "Do not submit" not in message
    assert store.path.read_bytes() == before and store.records() == [kept]
    again = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert store.records() == [kept, again]


@pytest.mark.parametrize("short", [0, 1], ids=["all written, fsync failed", "all but the line end"])
def test_when_a_whole_ranking_cannot_be_taken_back_the_message_says_it_is_in_the_file(tmp_path, monkeypatch, short):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    size = store.path.stat().st_size
    with monkeypatch.context() as patch:
        patch.setattr(os, "ftruncate", refuse_truncate)
        if short:
            line = record_line({**kept, "id": "x" * 32, "prompt": PROMPT + "!", "ranking": [[1], [0]]})
            failing_write(patch, after_bytes=len(line) - 1)
        else:
            fsync_failing(patch, 1)
        with pytest.raises(PreferenceStoreError) as raised:
            store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    message = str(raised.value)
    assert f"the whole ranking is in the file after byte {size}" in message and "Do not submit it again" in message
    records = PreferenceStore(tmp_path, "ana").records()  # … and it is: the message told the truth
    assert len(records) == 2 and records[1]["prompt"] == PROMPT + "!"
    with pytest.raises(ValueError, match="already ranked"):
        store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 2


def test_short_writes_are_completed_and_a_write_of_nothing_does_not_loop(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    real_write = os.write
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", lambda fd, data: real_write(fd, data if is_lock_file(fd) else data[:7]))  # 7 a call
        kept = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert PreferenceStore(tmp_path, "ana").records() == [kept]
    calls = []

    def write_nothing(fd, data):
        if is_lock_file(fd):
            return real_write(fd, data)
        calls.append(fd)
        if len(calls) > 100:  # the old loop would spin for ever: fail instead
            raise AssertionError("os.write called again and again")
        return 0

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write_nothing)
        with pytest.raises(PreferenceStoreError, match="No space left on device"):
            store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert len(calls) == 1 and store.records() == [kept]


# ---- 7. FIFOs and devices named *.jsonl are never opened for reading --------------------------------------


def finishes(call, fifo, seconds: float = 30.0):
    """`call()`, run in a thread; if it is still running after `seconds` (blocked on the FIFO), the test
    fails, after trying for a few seconds to set it free by opening the FIFO for writing (a blocked reader
    then gets end of file) so that it does not stay behind."""
    result = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as error:  # handed to the test below
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for _ in range(50):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            thread.join(0.1)
        pytest.fail(f"blocked on the FIFO {fifo} for {seconds} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_a_fifo_in_the_folder_is_a_problem_and_is_not_opened(tmp_path, capsys):
    good = PreferenceStore(tmp_path, "ana")
    kept = good.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    fifo = tmp_path / "bob.jsonl"
    os.mkfifo(fifo)
    assert finishes(lambda: check_preference_files([tmp_path]), fifo) == 1
    out = capsys.readouterr().out
    assert f"{fifo}: not read: not a regular file but a FIFO (named pipe)" in out
    assert f"{good.path}: 1 rankings" in out
    dataset, problems = finishes(lambda: load_preferences(tmp_path), fifo)
    assert len(dataset) == 1 and problem_lines(problems) == [("bob.jsonl", 0)]
    assert finishes(lambda: check_preference_files([fifo]), fifo) == 1  # named on its own
    assert "not a regular file but a FIFO" in capsys.readouterr().out
    records, problems = finishes(lambda: read_preference_file(fifo), fifo)
    assert records == [] and "cannot read: not a regular file" in str(problems[0])
    assert good.records() == [kept]


def test_a_device_named_jsonl_is_a_problem(tmp_path, capsys):
    device = tmp_path / "null.jsonl"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a node of the null device, made here (root only)
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot make a device node here (not root, or not Unix)")
    assert check_preference_files([tmp_path]) == 1
    assert f"{device}: not read: not a regular file but a character device" in capsys.readouterr().out
    records, problems = read_preference_file(device)
    assert records == [] and "cannot read: not a regular file but a character device" in str(problems[0])


def test_a_store_whose_file_is_a_fifo_refuses_instead_of_blocking(tmp_path):
    fifo = tmp_path / "ana.jsonl"
    os.mkfifo(fifo)
    store = PreferenceStore(tmp_path, "ana")
    with pytest.raises(PreferenceStoreError, match="cannot read .*not a regular file but a FIFO"):
        finishes(store.records, fifo)
    with pytest.raises(PreferenceStoreError, match="could not save .*not a regular file but a FIFO"):
        finishes(lambda: store.submit(PROMPT, ANSWERS, [[0], [1]], "sft"), fifo)
