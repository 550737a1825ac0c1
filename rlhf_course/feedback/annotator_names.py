"""Annotator names: each name becomes a file name (`<name>.jsonl`) that Windows, macOS and Linux all accept.

A name is NFKC-normalised and stripped (`validate_annotator_name`): letters of any script with their marks,
digits, and space, '-', '_' or '.' inside; no Windows device name (CON, NUL, COM1 …); at most 64 characters and
`MAX_NAME_BYTES` of UTF-8, so that every file name made from it fits. Names are compared NFKC-normalised and
case-folded (`annotator_key`: "ANA" is ana), and a name that only looks like another one in the same folder
(Cyrillic "аna" beside Latin "ana": `name_skeleton`) is refused (`spelling_in_folder`).
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

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
