"""Issue 36, row 13: annotator names that every OS can store, compared as people read them.

A class folder on a shared drive is read by Windows too: a name is refused if Windows forbids it in a file name
(<>:"/\\|?*, control characters, CON, PRN, AUX, NUL, COM0-9, LPT0-9 with or without an extension, a trailing
dot). Letters with their combining marks are letters (Hindi, Tamil, Bengali, Thai). Names are NFKC-normalised
and compared case-folded: "ANA" is ana, and "STRASSE" is "Straße" (the same name typed in capitals), so a second
spelling writes to the first one's file. A name that only looks like another one in the folder (Cyrillic "аna"
beside Latin "ana") is refused. A file name's byte length is checked before anything is made.
"""

from __future__ import annotations

import time
import unicodedata

import pytest

from rlhf_course.feedback.annotator_names import MAX_NAME_BYTES, annotator_key, name_skeleton, validate_annotator_name
from rlhf_course.feedback.preference_loading import load_preferences
from rlhf_course.feedback.preference_store import PreferenceStore

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b"]

NAMES_WITH_MARKS = {
    "Hindi": "प्रिया शर्मा",
    "Tamil": "தமிழ்செல்வன்",  # ends with a virama, a mark
    "Bengali": "সৌমিত্র",
    "Thai": "สมศักดิ์",  # vowel and tone marks above the letters
    "Persian": "علی‌رضا",  # a zero-width non-joiner inside, as Persian writes it
}


@pytest.mark.parametrize("script", list(NAMES_WITH_MARKS))
def test_names_written_with_combining_marks_are_names(tmp_path, script):
    name = NAMES_WITH_MARKS[script]
    assert any(unicodedata.category(c).startswith("M") or c == "\u200c" for c in name)
    assert validate_annotator_name(f" {name} ") == name
    store = PreferenceStore(tmp_path, name)
    store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert (tmp_path / f"{name}.jsonl").is_file()
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and dataset["annotator"] == [name]


@pytest.mark.parametrize("name", ["a<b", "a>b", "a:b", 'a"b', "a/b", "a\\b", "a|b", "a?b", "a*b", "a\x01b", "a\x7fb",
                                  "tab\tname", "new\nline"])
def test_characters_windows_forbids_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match=r"annotator name .* is not allowed: the character .* cannot be there"):
        PreferenceStore(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["CON", "con", "Prn", "aux", "NUL", "nul.txt", "Nul .x", "COM1", "com9", "LPT1",
                                  "lpt9", "COM0", "com¹", "aux.a.b"])
def test_windows_device_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="is a device name on Windows, never a file"):
        validate_annotator_name(name)
    with pytest.raises(ValueError, match="device name"):
        PreferenceStore(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["console", "com10", "lpt", "nulla", "auxiliary", "con-x"])
def test_names_that_merely_begin_like_a_device_are_fine(name):
    assert validate_annotator_name(name) == name


@pytest.mark.parametrize("name", ["ends.", ".hidden", "x..y", "-dash", "a.", "\u0301accent-first", "a" * 65])
def test_dots_and_edges_are_refused(name):
    with pytest.raises(ValueError, match="annotator name"):
        validate_annotator_name(name)


def test_trailing_spaces_are_stripped_not_kept():
    assert validate_annotator_name("ana   ") == "ana" and validate_annotator_name("\u00a0ana\u3000") == "ana"


def test_names_are_nfkc_normalised():
    decomposed = "Jose\u0301"  # e + combining acute, as macOS and some keyboards type it
    assert validate_annotator_name(decomposed) == "José" and len(validate_annotator_name(decomposed)) == 4
    assert validate_annotator_name("ａｎａ") == "ana"  # fullwidth letters


def test_the_byte_length_of_the_file_name_is_checked_up_front(tmp_path):
    four_bytes = "\U00020000"  # a CJK ideograph (a letter) that takes 4 bytes in UTF-8
    with pytest.raises(ValueError, match=r"it is 256 bytes in UTF-8.*at most 255 bytes, 217 of them for the name"):
        PreferenceStore(tmp_path, four_bytes * 64)
    assert list(tmp_path.iterdir()) == []
    longest = four_bytes * (MAX_NAME_BYTES // 4)  # 54 characters, 216 bytes: every file made from it fits
    store = PreferenceStore(tmp_path, longest)
    store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert store.path.is_file() and len(store.lock_path.name.encode("utf-8")) <= 255
    hindi = "ह" * 64  # 3 bytes each: 192
    PreferenceStore(tmp_path, hindi).submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert (tmp_path / f"{hindi}.jsonl").is_file()


def test_one_name_in_two_cases_is_one_annotator(tmp_path):
    first = PreferenceStore(tmp_path, "Straße").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    again = PreferenceStore(tmp_path, "STRASSE")
    assert annotator_key("Straße") == annotator_key("STRASSE") == "strasse"
    assert again.path == tmp_path / "Straße.jsonl" and again.annotator == "Straße"
    assert again.records() == [first]
    with pytest.raises(ValueError, match="already ranked"):  # the same person: the same duplicate check
        again.submit(PROMPT, ANSWERS, [[1], [0]], "sft")
    assert PreferenceStore(tmp_path, "ANA").path.name == "ANA.jsonl"  # no file yet: the name as typed
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert PreferenceStore(tmp_path, "ANA").path.name == "ana.jsonl"
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["Straße.jsonl", "ana.jsonl"]


@pytest.mark.parametrize("look_alike, letter", [("\u0430na", "CYRILLIC SMALL LETTER A"),
                                                ("\u0391NA", "GREEK CAPITAL LETTER ALPHA"),
                                                ("an\u0430", "CYRILLIC SMALL LETTER A")])
def test_a_name_that_only_looks_like_another_is_refused(tmp_path, look_alike, letter):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert name_skeleton(look_alike) == name_skeleton("ana") and annotator_key(look_alike) != "ana"
    with pytest.raises(ValueError, match=rf"looks like 'ana', who already ranks in .*{letter}"):
        PreferenceStore(tmp_path, look_alike)
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["ana.jsonl"]


def test_a_look_alike_that_appears_after_the_store_was_made_is_refused_at_the_first_write(tmp_path):
    cyrillic = PreferenceStore(tmp_path, "\u0430na")  # the folder is empty: nothing to look like yet
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    with pytest.raises(ValueError, match="looks like 'ana'"):
        cyrillic.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["ana.jsonl"]


@pytest.mark.parametrize("first, second", [("ana", "anna"), ("José", "Jose"), ("Nina", "Нина"),
                                           ("Nikos", "Νίκος"),
                                           ("bob", "bob2")])
def test_different_names_are_not_refused(tmp_path, first, second):
    PreferenceStore(tmp_path, first).submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    PreferenceStore(tmp_path, second).submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    assert len(list(tmp_path.glob("*.jsonl"))) == 2


def test_validating_names_is_fast_for_a_large_class():
    names = [f"student {number}" for number in range(10_000)]
    started = time.perf_counter()
    assert [validate_annotator_name(name) for name in names] == names
    assert time.perf_counter() - started < 2.0  # about 0.1 s here; one name's check does not grow with the class
