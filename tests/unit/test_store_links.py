"""Issue 36, row 2: a name in the folder the store writes to that leads elsewhere.

A symbolic link (or a dangling one) named `ana.jsonl` or `ana.jsonl.lock`, or a hard link: the store never
writes through it, never creates what it points to, and says so in one `PreferenceStoreError` naming the file.
Every link here points at a file this test made under its own tmp_path ("outside" the store's folder), never
at a system file: a store that followed a link would write wherever it points.
"""

from __future__ import annotations

import json
import os

import pytest

from rlhf_course.feedback import safe_files
from rlhf_course.feedback.preference_store import PreferenceStore, PreferenceStoreError
from rlhf_course.feedback.safe_files import UnsafeFileError

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b"]
PRECIOUS = b"someone else's file: must never change\n"


@pytest.fixture()
def places(tmp_path):
    """(the store's folder, a folder outside it holding a file the test made)."""
    folder, outside = tmp_path / "prefs", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "target").write_bytes(PRECIOUS)
    return folder, outside


def test_a_symbolic_link_to_a_file_outside_is_never_written_through(places):
    folder, outside = places
    (folder / "ana.jsonl").symlink_to(outside / "target")
    store = PreferenceStore(folder, "ana")
    with pytest.raises(PreferenceStoreError, match=r"could not save to .*ana\.jsonl: ana\.jsonl is a symbolic link "
                                                   r"to '.*outside/target'.*Nothing was written"):
        store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    with pytest.raises(PreferenceStoreError, match=r"cannot read .*ana\.jsonl: ana\.jsonl is a symbolic link"):
        store.records()
    with pytest.raises(PreferenceStoreError, match="symbolic link"):
        store.undo_last()
    assert (outside / "target").read_bytes() == PRECIOUS
    assert (folder / "ana.jsonl").is_symlink()


def test_a_dangling_link_does_not_create_its_target(places):
    folder, outside = places
    (folder / "ana.jsonl").symlink_to(outside / "made-by-nobody.jsonl")
    store = PreferenceStore(folder, "ana")
    with pytest.raises(PreferenceStoreError, match=r"ana\.jsonl is a symbolic link"):
        store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    with pytest.raises(PreferenceStoreError, match="symbolic link"):
        store.submit_many([(PROMPT, ANSWERS, [[0], [1]], "sft")])
    assert not (outside / "made-by-nobody.jsonl").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["target"]


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_a_lock_file_that_is_a_link_is_refused_before_anything_is_made(places, dangling):
    folder, outside = places
    target = outside / ("made-by-nobody" if dangling else "target")
    (folder / "ana.jsonl.lock").symlink_to(target)
    store = PreferenceStore(folder, "ana")
    with pytest.raises(PreferenceStoreError, match=r"ana\.jsonl\.lock is a symbolic link.*Nothing was written"):
        store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert not (folder / "ana.jsonl").exists()
    assert (outside / "target").read_bytes() == PRECIOUS and not (outside / "made-by-nobody").exists()


def test_a_hard_link_is_never_written_but_can_be_read(places):
    folder, outside = places
    record = {"id": "r1", "time": "2026-01-01T00:00:00+00:00", "annotator": "ana", "source": "human",
              "checkpoint": "sft", "prompt": PROMPT, "answers": ANSWERS, "ranking": [[0], [1]]}
    shared = outside / "ana-elsewhere.jsonl"
    shared.write_bytes((json.dumps(record) + "\n").encode("utf-8"))
    os.link(shared, folder / "ana.jsonl")
    before = shared.read_bytes()
    store = PreferenceStore(folder, "ana")
    assert store.records() == [record]  # reading it changes nothing anywhere
    with pytest.raises(PreferenceStoreError, match=r"ana\.jsonl has 2 names \(hard links\).*Nothing was written"):
        store.submit(PROMPT + "!", ANSWERS, [[1], [0]], "sft")
    assert shared.read_bytes() == before


def test_a_link_that_appears_after_the_look_is_still_not_followed(places, monkeypatch):
    """The name is looked at, then opened: a link made in between is refused by O_NOFOLLOW (Unix) or by the
    look after opening (everywhere). Here the first look is made to miss the link."""
    folder, outside = places
    (folder / "ana.jsonl").symlink_to(outside / "target")
    real_look, looks = safe_files.lstat_not_a_link, []

    def look_that_misses_the_first_time(path):
        looks.append(path)
        return None if len(looks) == 1 else real_look(path)

    monkeypatch.setattr(safe_files, "lstat_not_a_link", look_that_misses_the_first_time)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        safe_files.open_to_append(folder / "ana.jsonl")
    assert (outside / "target").read_bytes() == PRECIOUS


def test_the_store_reads_and_writes_its_own_plain_file_as_before(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    record = store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert os.stat(store.path).st_nlink == 1 and not store.path.is_symlink()
    assert PreferenceStore(tmp_path, "ana").records() == [record]
