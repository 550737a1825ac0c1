"""Tests for rlhf_course.feedback.preference_store: annotator names, the durable store, loading and checking.

Everything writes under pytest's tmp_path, never into the repository's data/.
Read-only folders: these tests run as root, and root ignores chmod, so a read-only folder is simulated
two ways — a folder path under a regular *file* (the OS refuses to create it, for root too), and
`os.open` patched to raise PermissionError (what a non-root user gets from a chmod 555 folder).
The store against odd files, odd text and failing disks: test_store_robustness.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from rlhf_course.feedback.annotator_names import validate_annotator_name
from rlhf_course.feedback.preference_loading import PAIR_COLUMNS, Problem, check_preference_files, load_preferences
from rlhf_course.feedback.preference_store import PreferenceStore, PreferenceStoreError, simulated_preferences_dir

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b", "answer c", "answer d"]


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- where preference files live --------------------------------------------------------------------


def test_simulated_preferences_live_under_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_RUNS_DIR", str(tmp_path))
    assert simulated_preferences_dir("tiny") == tmp_path / "tiny" / "preferences"


# ---- annotator names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ana", "Ana Lopez", "bob-2", "c_d", "j.r.r", "José"])
def test_good_annotator_names(name):
    assert validate_annotator_name(f"  {name} ") == name


@pytest.mark.parametrize("name", ["", "   ", "../x", "a/b", "a\\b", ".hidden", "x..y", "ends.", "a" * 65, "tab\tname"])
def test_bad_annotator_names(name, tmp_path):
    with pytest.raises(ValueError, match="annotator name"):
        PreferenceStore(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


# ---- the store --------------------------------------------------------------------------------------


def test_submit_round_trip(tmp_path):
    store = PreferenceStore(tmp_path / "prefs", "ana")
    record = store.submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], checkpoint="sft")
    assert store.path == tmp_path / "prefs" / "ana.jsonl"
    [saved] = lines(store.path)
    assert saved == record
    assert set(saved) == {"id", "time", "annotator", "source", "checkpoint", "prompt", "answers", "ranking"}
    assert saved["annotator"] == "ana" and saved["source"] == "human" and saved["checkpoint"] == "sft"
    assert saved["ranking"] == [[2], [0, 3], [1]] and saved["answers"] == ANSWERS
    assert "T" in saved["time"] and saved["time"].endswith("+00:00")
    assert store.records() == [record]
    # a fresh store (a restarted kernel) sees the same
    assert PreferenceStore(tmp_path / "prefs", "ana").records() == [record]


def test_each_record_is_fsynced_at_submission_and_a_new_file_in_its_folder(tmp_path, monkeypatch):
    synced = []  # what each fsync covered: the folder, or the file's size at that moment
    real_fsync = os.fsync

    def fsync(fd):
        info = os.fstat(fd)
        synced.append("folder" if stat.S_ISDIR(info.st_mode) else info.st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    first = store.path.stat().st_size
    store.skip(PROMPT + " again", ANSWERS[:2], "sft")
    # the new file's name is made durable before anything is written to it, then each record once it is written
    assert synced == ["folder", first, store.path.stat().st_size] and 0 < first < synced[-1]


@pytest.mark.parametrize(
    "prompt, answers, ranking, message",
    [
        (PROMPT, ANSWERS, [[0], [1], [2], [7]], "answer 7, which does not exist"),
        ("", ANSWERS, [[0], [1], [2], [3]], "prompt is empty"),
        ("   ", ANSWERS, [[0], [1], [2], [3]], "prompt is empty"),
        (PROMPT, ["only one"], [[0]], "at least two answers"),
        (PROMPT, ANSWERS, [[0], [1]], "not ranked"),
    ],
)
def test_bad_submissions_write_nothing(tmp_path, prompt, answers, ranking, message):
    store = PreferenceStore(tmp_path, "ana")
    with pytest.raises(ValueError, match=message):
        store.submit(prompt, answers, ranking, checkpoint="sft")
    assert not store.path.exists()


def test_duplicate_submission_is_rejected(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    with pytest.raises(ValueError, match="already ranked these answers"):
        store.submit(PROMPT, ANSWERS, [[3], [2], [1], [0]], "sft")
    # also from another store object on the same file (another kernel)
    with pytest.raises(ValueError, match="already ranked"):
        PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[1], [0], [2], [3]], "sft")
    assert len(lines(store.path)) == 1
    # the same answers in another order are another item; another annotator has their own file
    store.submit(PROMPT, ANSWERS[::-1], [[0], [1], [2], [3]], "sft")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")


def test_submit_many_writes_once_and_leaves_out_what_is_ranked(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "sim", source="simulated:gold")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    batch = [(PROMPT, ANSWERS, [[3], [2], [1], [0]], "sft"),  # already in the file
             (PROMPT + "!", ANSWERS, [[1], [0], [2], [3]], "sft"),
             (PROMPT + "!", ANSWERS, [[0], [1], [2], [3]], "sft"),  # twice in the batch
             (PROMPT + "?", ANSWERS[:2], [[1], [0]], "sft")]
    written = store.submit_many(batch)
    assert [(r["prompt"], r["ranking"]) for r in written] == [(PROMPT + "!", [[1], [0], [2], [3]]),
                                                              (PROMPT + "?", [[1], [0]])]
    assert len(synced) == 1
    assert lines(store.path) == [kept, *written]
    assert PreferenceStore(tmp_path, "sim").has_ranked(PROMPT + "?", ANSWERS[:2])


def test_submit_many_with_one_bad_ranking_writes_nothing(tmp_path):
    store = PreferenceStore(tmp_path, "sim", source="simulated:gold")
    with pytest.raises(ValueError, match="not ranked"):
        store.submit_many([(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft"), (PROMPT + "!", ANSWERS, [[0], [1]], "sft")])
    assert not store.path.exists()


def test_undo_appends_and_loaders_drop_the_undone(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    second = store.submit(PROMPT + "!", ANSWERS, [[3], [2], [1], [0]], "sft")
    assert store.undo_last() == second
    assert store.records() == [first]
    rows = lines(store.path)
    assert len(rows) == 3 and rows[2]["undo"] == second["id"]  # nothing deleted, one line appended
    # after the undo the same item may be ranked again
    assert not store.has_ranked(PROMPT + "!", ANSWERS) and store.has_ranked(PROMPT, ANSWERS)
    store.submit(PROMPT + "!", ANSWERS, [[0], [1], [2], [3]], "sft")
    assert store.undo_last()["ranking"] == [[0], [1], [2], [3]]
    assert store.undo_last() == first
    assert store.undo_last() is None
    assert store.records() == []
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 0


def test_skip_gives_no_pairs(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    skipped = store.skip(PROMPT, ANSWERS, "sft")
    assert skipped["skipped"] is True and "ranking" not in skipped
    dataset, problems = load_preferences([store.path])
    assert problems == [] and len(dataset) == 0
    assert dataset.column_names == PAIR_COLUMNS
    assert store.undo_last() == skipped


def test_read_only_folder_under_a_file(tmp_path):
    """A folder that cannot be created (its parent is a regular file) fails for root too."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file", encoding="utf-8")
    store = PreferenceStore(blocker / "prefs", "ana")
    with pytest.raises(PreferenceStoreError, match="could not save to .*ana.jsonl.*ranking is kept"):
        store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    assert blocker.read_text(encoding="utf-8") == "a file"


def test_read_only_folder_permission_error(tmp_path, monkeypatch):
    """`os.open` raising PermissionError stands in for a chmod 555 folder (root ignores chmod)."""
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse)
        with pytest.raises(PreferenceStoreError, match="Permission denied.*submit again"):
            store.submit(PROMPT + "?", ANSWERS, [[1], [0], [2], [3]], "sft")
        with pytest.raises(PreferenceStoreError):
            store.undo_last()
    assert store.records() == [kept]  # nothing lost, nothing half-written
    # the folder is writable again: the same ranking goes through
    store.submit(PROMPT + "?", ANSWERS, [[1], [0], [2], [3]], "sft")
    assert len(lines(store.path)) == 2


def _append_many(folder, worker, n):
    store = PreferenceStore(folder, "shared")
    for k in range(n):
        store.submit(f"{PROMPT} worker {worker} item {k}", ["x" * (k % 50 + 1), "y" * 300], [[1], [0]], "sft")


def test_two_processes_append_to_one_file(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(tmp_path, w, 200)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    rows = lines(tmp_path / "shared.jsonl")  # every line parses: no interleaving
    assert len(rows) == 400 and len({r["id"] for r in rows}) == 400
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 400


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    with open(store.path, "a", encoding="utf-8") as file:
        file.write('{"id": "half a line from a crash')  # no newline
    store.submit(PROMPT + "!", ANSWERS[:2], [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2
    assert [p.line_number for p in problems] == [2]


# ---- loading and checking ---------------------------------------------------------------------------


def test_load_pairs_and_columns(tmp_path):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], "sft")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS[:3], [[0], [1], [2]], "base")
    dataset, problems = load_preferences(tmp_path)
    assert problems == []
    assert dataset.column_names == PAIR_COLUMNS
    assert len(dataset) == 5 + 3
    ana = [row for row in dataset if row["annotator"] == "ana"]
    assert {(row["chosen"], row["rejected"]) for row in ana} == {
        ("answer c", "answer a"), ("answer c", "answer d"), ("answer c", "answer b"),
        ("answer a", "answer b"), ("answer d", "answer b"),
    }
    assert {row["checkpoint"] for row in dataset} == {"sft", "base"}
    assert {row["source"] for row in dataset} == {"human"}


def test_empty_load_has_the_columns(tmp_path):
    dataset, problems = load_preferences([tmp_path])
    assert len(dataset) == 0 and dataset.column_names == PAIR_COLUMNS and problems == []


def test_corrupt_lines_are_reported_and_the_rest_loads(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    good = store.path.read_text(encoding="utf-8")
    bad_ranking = json.dumps({**lines(store.path)[0], "id": "other", "ranking": [[0], [5]]})
    store.path.write_text(
        good
        + "{not json\n"
        + '"a string"\n'
        + bad_ranking + "\n"
        + json.dumps({"id": "u1", "time": "t", "annotator": "ana", "source": "human", "undo": "nope"}) + "\n"
        + "\n"  # blank lines are ignored
        + good,  # the same id again
        encoding="utf-8",
    )
    store.path.write_bytes(store.path.read_bytes() + b"\xff\xfe\n")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS[:2], [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2  # ana's good line and bob's
    assert [(p.path.name, p.line_number) for p in problems] == [("ana.jsonl", n) for n in (2, 3, 4, 5, 7, 8)]
    messages = [p.message for p in problems]
    assert "not valid JSON" in messages[0]
    assert "JSON object" in messages[1]
    assert "answer 5, which does not exist" in messages[2]
    assert "which is not in this file" in messages[3]
    assert "duplicate record id" in messages[4]
    assert str(problems[0]) == f"{store.path}:2: {messages[0]}"


def test_check_preference_files(tmp_path, capsys):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], "sft")
    store.skip(PROMPT + "?", ANSWERS, "sft")
    assert check_preference_files([tmp_path]) == 0
    out = capsys.readouterr().out
    assert "1 rankings, 1 skipped, 0 undone, 5 pairs, 0 problem(s)" in out and "OK" in out

    with open(store.path, "a", encoding="utf-8") as file:
        file.write("oops\n")
    assert check_preference_files([store.path, tmp_path / "missing.jsonl"]) == 1
    out = capsys.readouterr().out
    assert f"{store.path}:3: not valid JSON" in out
    assert f"{tmp_path / 'missing.jsonl'}: no such file or folder" in out
    assert str(Problem(tmp_path, 0, "m")) == f"{tmp_path}: m"


def test_prefs_check_command_line(tmp_path, capsys):
    from rlhf_course.__main__ import main

    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    assert main(["prefs", "check", str(tmp_path)]) == 0
    assert main(["prefs", "check", str(tmp_path / "nothing-here")]) == 1
    assert "no such file or folder" in capsys.readouterr().out
