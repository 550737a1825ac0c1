"""Issue 36, rows 6-9 and 15: what counts as a record, and how often.

Row 6: a ranking holds at most 64 answers (2,016 pairs), refused when submitted and reported when loaded.
Row 7: records are identified by their id: one reached through two files is loaded once and reported.
Row 8: a UTF-8 BOM and CR or CRLF line ends are read as a text editor reads them, by the loaders and the
store alike (so the store still refuses a duplicate of such a record).
Row 9: an undo takes back its record wherever it is in the file, for the loaders and the store alike.
Row 15: validation is linear.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from rlhf_course.feedback.preference_loading import (
    check_preference_files,
    load_preferences,
    read_preference_file,
    read_preference_files,
)
from rlhf_course.feedback.preference_records import MAX_ANSWERS
from rlhf_course.feedback.preference_store import PreferenceStore
from rlhf_course.feedback.rankings import validate_ranking

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b"]


def hand_record(record_id: str, prompt: str = PROMPT, answers=None, **fields) -> dict:
    """A valid ranking record as someone might write it by hand (or another tool did)."""
    answers = answers or ANSWERS
    return {"id": record_id, "time": "2026-01-01T00:00:00+00:00", "annotator": "ana", "source": "human",
            "checkpoint": "sft", "prompt": prompt, "answers": answers,
            "ranking": [[i] for i in range(len(answers))], **fields}


def jsonl(*records, end: str = "\n") -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + end for record in records).encode("utf-8")


# ---- row 6: at most 64 answers a ranking ----------------------------------------------------------------


def test_a_ranking_of_more_than_64_answers_is_refused_at_once(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    answers = [f"answer {i}" for i in range(MAX_ANSWERS + 1)]
    with pytest.raises(ValueError, match="a ranking holds at most 64 answers \\(2,016 pairs\\), not 65"):
        store.submit(PROMPT, answers, [[i] for i in range(65)], "sft")
    with pytest.raises(ValueError, match="at most 64 answers"):
        store.submit_many([(PROMPT + "?", ANSWERS, [[0], [1]], "sft"),
                           (PROMPT, answers, [[i] for i in range(65)], "sft")])
    with pytest.raises(ValueError, match="at most 64 answers"):
        store.skip(PROMPT, answers, "sft")
    assert not store.path.exists()
    store.submit(PROMPT, answers[:64], [[i] for i in range(64)], "sft")  # 64 is allowed: 2,016 pairs
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 64 * 63 // 2


def test_a_huge_ranking_in_a_file_is_one_problem_and_costs_no_memory(tmp_path, capsys):
    answers = [f"a{i}" for i in range(4000)]  # 8 M pairs: the loader ran out of memory
    path = tmp_path / "ana.jsonl"
    path.write_bytes(jsonl(hand_record("small"), hand_record("huge", prompt="big", answers=answers)))
    started = time.perf_counter()
    dataset, problems = load_preferences(tmp_path)
    seconds = time.perf_counter() - started
    assert len(dataset) == 1 and [(p.line_number, "at most 64 answers" in p.message) for p in problems] == [(2, True)]
    assert seconds < 10  # refused before any pair is made (about 0.1 s here)
    store = PreferenceStore(tmp_path, "ana")
    assert [r["id"] for r in store.records()] == ["small"]  # the store skips it too
    assert check_preference_files([path]) == 1
    assert f"{path}:2: a ranking holds at most 64 answers (2,016 pairs), not 4,000" in capsys.readouterr().out


# ---- row 7: one record, two files -------------------------------------------------------------------------


def test_a_sync_tools_conflicted_copy_counts_each_record_once(tmp_path, capsys):
    store = PreferenceStore(tmp_path, "ana")
    for k in range(3):
        store.submit(f"{PROMPT} {k}", ANSWERS, [[0], [1]], "sft")
    copy = tmp_path / "ana (conflicted copy).jsonl"  # the other laptop's version: the same 3 and one more
    copy.write_bytes(store.path.read_bytes() + jsonl(hand_record("only-in-copy", prompt="another prompt")))
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 4
    assert [(p.path.name, p.line_number) for p in problems] == [(copy.name, 1)]
    assert f"was read before from {store.path}:1 and 2 more of its records (lines 2, 3)" in problems[0].message
    assert check_preference_files([tmp_path]) == 1
    out = capsys.readouterr().out
    assert f"{store.path}: 3 rankings" in out
    assert f"{copy}: 1 rankings, 0 skipped, 0 undone, 1 pairs, 1 problem(s)" in out


def test_an_undo_in_a_copy_takes_back_the_record_in_the_original(tmp_path):
    first, second = hand_record("r1"), hand_record("r2", prompt="second")
    (tmp_path / "ana.jsonl").write_bytes(jsonl(first, second))
    undo = {"id": "u2", "time": "t", "annotator": "ana", "source": "human", "undo": "r2"}
    (tmp_path / "ana (conflicted copy).jsonl").write_bytes(jsonl(first, second, undo))
    dataset, problems = load_preferences(tmp_path)
    assert dataset["prompt"] == [PROMPT] and len(problems) == 1  # r2 undone; r1, r2 repeated: one problem


def test_a_link_to_another_preference_file_is_not_counted_again(tmp_path, capsys):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    (tmp_path / "ben.jsonl").symlink_to("ana.jsonl")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 1
    assert [(p.path.name, p.line_number) for p in problems] == [("ben.jsonl", 0)]
    assert "a symbolic link to 'ana.jsonl'" in problems[0].message and "not followed" in problems[0].message


def test_a_hard_link_or_a_path_given_twice_is_read_once(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    dataset, problems = load_preferences([store.path, store.path])
    assert len(dataset) == 1 and [str(p) for p in problems] == [
        f"{store.path}: the same file as {store.path} (a path given twice, or another name for it): read once"]
    dataset, problems = load_preferences([tmp_path, store.path])
    assert len(dataset) == 1 and len(problems) == 1
    os.link(store.path, tmp_path / "ben.jsonl")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 1 and [(p.path.name, "the same file as" in p.message) for p in problems] == [
        ("ben.jsonl", True)]


def test_read_preference_files_gives_each_record_to_the_file_read_first(tmp_path):
    (tmp_path / "ana.jsonl").write_bytes(jsonl(hand_record("r1")))
    (tmp_path / "ana 2.jsonl").write_bytes(jsonl(hand_record("r1")))
    files, problems = read_preference_files([tmp_path])
    assert [(path.name, [r["id"] for r in records]) for path, records in files] == [("ana.jsonl", ["r1"]),
                                                                                    ("ana 2.jsonl", [])]
    assert [(p.path.name, p.line_number) for p in problems] == [("ana 2.jsonl", 1)]


# ---- row 8: BOM, CR and CRLF ------------------------------------------------------------------------------


@pytest.mark.parametrize("bom, end", [(b"\xef\xbb\xbf", "\n"), (b"", "\r"), (b"", "\r\n"), (b"\xef\xbb\xbf", "\r\n")],
                         ids=["BOM", "CR", "CRLF", "BOM+CRLF"])
def test_bom_and_cr_line_ends_are_read_as_an_editor_reads_them(tmp_path, bom, end):
    records = [hand_record(f"r{k}", prompt=f"{PROMPT} {k}") for k in range(3)]
    path = tmp_path / "ana.jsonl"
    path.write_bytes(bom + jsonl(*records, end=end))
    loaded, problems = read_preference_file(path)
    assert problems == [] and loaded == records
    store = PreferenceStore(tmp_path, "ana")
    assert store.records() == records and store.has_ranked(f"{PROMPT} 0", ANSWERS)
    with pytest.raises(ValueError, match="already ranked"):  # the store sees the first and every CR record
        store.submit(f"{PROMPT} 0", ANSWERS, [[1], [0]], "sft")
    with pytest.raises(ValueError, match="already ranked"):
        store.submit(f"{PROMPT} 2", ANSWERS, [[1], [0]], "sft")
    added = store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert PreferenceStore(tmp_path, "ana").records() == [*records, added]
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 4


def test_a_cr_file_without_a_last_line_end_gets_the_next_record_on_a_new_line(tmp_path):
    path = tmp_path / "ana.jsonl"
    path.write_bytes(jsonl(hand_record("r1"), end="\r") + jsonl(hand_record("r2", prompt="two"), end=""))
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    records, problems = read_preference_file(path)
    assert problems == [] and [r["id"] for r in records][:2] == ["r1", "r2"] and len(records) == 3


# ---- row 9: an undo before its record --------------------------------------------------------------------


def test_an_undo_before_its_record_takes_it_back_for_the_loader_and_the_store(tmp_path):
    undo = {"id": "u1", "time": "t", "annotator": "ana", "source": "human", "undo": "r1"}
    path = tmp_path / "ana.jsonl"
    path.write_bytes(jsonl(undo, hand_record("r1")))  # moved above its record by hand
    records, problems = read_preference_file(path)
    assert problems == [] and [r["id"] for r in records] == ["u1", "r1"]
    dataset, _ = load_preferences(tmp_path)
    store = PreferenceStore(tmp_path, "ana")
    assert len(dataset) == 0 and store.records() == [] and not store.has_ranked(PROMPT, ANSWERS)
    again = store.submit(PROMPT, ANSWERS, [[1], [0]], "sft")  # both agree it is not ranked: one ranking now
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 1 and store.records() == [again]
    with pytest.raises(ValueError, match="already ranked"):
        store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")


def test_an_undo_naming_no_record_of_its_file_is_a_problem(tmp_path):
    path = tmp_path / "ana.jsonl"
    path.write_bytes(jsonl(hand_record("r1"), {"id": "u1", "time": "t", "annotator": "ana", "source": "human",
                                               "undo": "elsewhere"}))
    records, problems = read_preference_file(path)
    assert [r["id"] for r in records] == ["r1"]
    assert [(p.line_number, p.message) for p in problems] == [(2, "undo names record 'elsewhere', which is not in "
                                                                  "this file")]


# ---- row 15: linear -------------------------------------------------------------------------------------


def test_validating_a_ranking_is_linear():
    n = 50_000  # a list of the answers seen made this 0.77 s at 10,000 and about 20 s at 50,000
    started = time.perf_counter()
    assert len(validate_ranking([[i] for i in range(n)][::-1], n)) == n
    assert time.perf_counter() - started < 2.0  # about 0.05 s here


def test_reading_many_records_is_linear(tmp_path):
    def seconds_to_read(n: int) -> float:
        path = tmp_path / f"n{n}.jsonl"
        path.write_bytes(jsonl(*(hand_record(f"r{k}", prompt=f"p{k}") for k in range(n))))
        started = time.perf_counter()
        records, problems = read_preference_file(path)
        assert len(records) == n and not problems
        return time.perf_counter() - started

    small, large = min(seconds_to_read(2_000) for _ in range(3)), min(seconds_to_read(8_000) for _ in range(3))
    assert large < 10 * small  # 4x the records: about 4x the time (quadratic would be 16x)
