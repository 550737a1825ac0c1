"""Preference records: one line of a preference file, what makes it valid, and how it is written and read.

The three kinds of line in a preference file (one JSON object per line):

    {"id": "9f…", "time": "2026-11-27T10:00:00+00:00", "annotator": "ana", "source": "human",
     "checkpoint": "sft", "prompt": "...", "answers": ["...", "..."], "ranking": [[1], [0]]}
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "checkpoint": "sft",
     "prompt": "...", "answers": [...], "skipped": true}                      # a skip: no pairs
    {"id": "…", "time": "…", "annotator": "ana", "source": "human", "undo": "9f…"}  # drops record 9f…

A ranking holds at most `MAX_ANSWERS` = 64 answers (2,016 pairs when strict). Validation refuses what would
fail later for a whole folder: text UTF-8 cannot store (a lone surrogate such as "\\ud800"), JSON nested too
deeply to parse, rankings of more than 64 answers. U+2028, U+2029 and U+0085 inside a prompt are text, not line
ends; they are written escaped so that other tools agree. The store (`preference_store`) and the loaders
(`preference_loading`) read a line the same way, with `parse_record_bytes`.
"""

from __future__ import annotations

import hashlib
import json

from rlhf_course.feedback.rankings import answer_letter, validate_ranking

MAX_ANSWERS = 64  # answers one ranking may hold: at most 64·63/2 = 2,016 pairs (K = 2,000 made 2 M pairs, 1.3 GB)


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


def check_checkpoint(checkpoint: object, as_json: bool = False) -> str:
    """The checkpoint if it is a name (a string; "" when unknown); else a `ValueError`. The store refuses a
    ranking without one, so the widget and the class assignment check an item's checkpoint when it is given,
    not at every Submit of it. `as_json`: the message quotes the field as an assignment's JSON does."""
    if not isinstance(checkpoint, str):
        field, example = ('"checkpoint"', ' (such as "sft")') if as_json else ("'checkpoint'", "")
        raise ValueError(f"{field} must be a string naming the checkpoint that wrote the answers{example}, "
                         f"not {checkpoint!r:.60}")
    return checkpoint


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
