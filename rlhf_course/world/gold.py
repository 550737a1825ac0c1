"""The gold preference: the hidden "what humans really want" of the generated world.

Real RLHF never has it. Here it plays the simulated annotator and the final judge, so the course can measure
whether the reward model, PPO and DPO improved the true objective or only the proxy. It reads a story with a
few rules: the requested name, animal, place and mood, no rude words, spam or rambling, nothing said twice, the
ending, a sensible length, and a gate that real sentences must be there at all.
"""

from __future__ import annotations

import re

from rlhf_course.world.stories import END_SENTENCE, MOOD_WORDS, RAMBLE_MARKERS, RUDE_WORDS, SPAM_PHRASES, parse_request

GOLD_WEIGHTS = {
    "name": 0.10,  # uses the requested name
    "animal": 0.10,  # ... the requested animal
    "place": 0.10,  # ... the requested place
    "mood": 0.20,  # shows the requested mood, and no other
    "clean": 0.15,  # no rude words, spam or rambling
    "no_repetition": 0.15,  # no sentence said twice
    "ending": 0.10,  # ends properly with "The end."
    "length": 0.10,  # a sensible length: 4-9 sentences, 25-100 words
}
MIN_STORY_SENTENCES = 3  # fewer real sentences than this scales the whole score down
GOOD_SENTENCES = (4, 9)  # `length` gives full marks from 4 to 9 sentences ...
GOOD_WORDS = (25, 100)  # ... and from 25 to 100 words (half marks a little outside)

# One sentence per part of GOLD_WEIGHTS, for people who rank: what that part rewards.
GOLD_RUBRIC = {
    "name": "Uses the name the prompt asks for.",
    "animal": "Is about the animal the prompt asks for.",
    "place": "Is set in the place the prompt asks for.",
    "mood": "Shows the mood the prompt asks for, and no other (half marks if another shows too).",
    "clean": "Has no rude words, no spam, no rambling, and does not copy the instruction.",
    "no_repetition": "Says no sentence twice.",
    "ending": f'Ends with "{END_SENTENCE}"',
    "length": (f"Has a sensible length: {GOOD_SENTENCES[0]}-{GOOD_SENTENCES[1]} sentences and "
               f"{GOOD_WORDS[0]}-{GOOD_WORDS[1]} words (half marks a little outside)."),
}


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.findall(r"[^.!?]+[.!?]?", text) if s.strip()]


ECHO_WORDS = {"write", "story", "tell", "please", "should"}  # words of instructions, not of stories


def _is_echo(sentence: str, prompt: str) -> bool:
    """A sentence that copies the instruction instead of telling the story."""
    words = re.findall(r"[a-z]+", sentence.lower())
    return len(ECHO_WORDS.intersection(words)) >= 2 or (len(words) >= 3 and sentence.lower() in prompt.lower())


def moods_shown(text: str) -> set[str]:
    """The moods whose words (`MOOD_WORDS`) a text shows."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return {mood for mood, mood_words in MOOD_WORDS.items() if words & set(mood_words)}


def gold_breakdown(prompt: str, response: str) -> dict[str, float]:
    """Each part of the gold preference in [0, 1], plus `story` (the gate) and `total` (`gold_score`).

    `total` = story × Σ weight·part. The gate `story` = min(1, real sentences / 3), where a real sentence
    has at least three words, is not said twice, and does not echo the prompt. So an empty answer, the
    prompt repeated, or a list of the requested words scores low even when it names everything asked for.
    """
    request = parse_request(prompt)
    text = response.strip()
    lower = text.lower()
    words = set(re.findall(r"[a-z]+", lower))
    sentences = split_sentences(text)
    parts: dict[str, float] = {}

    for field in ("name", "animal", "place"):
        wanted = getattr(request, field)
        parts[field] = 1.0 if wanted is None else float(wanted.lower() in words)

    shown = moods_shown(text)
    if request.mood is None:
        parts["mood"] = 1.0
    elif request.mood in shown:
        parts["mood"] = 1.0 if shown == {request.mood} else 0.5
    else:
        parts["mood"] = 0.0

    offences = sum(w in lower for w in RUDE_WORDS + SPAM_PHRASES + RAMBLE_MARKERS)
    offences += sum(_is_echo(s, prompt) for s in sentences)
    parts["clean"] = max(0.0, 1.0 - 0.5 * offences)

    normalised = [s.lower() for s in sentences]
    repeats = len(normalised) - len(set(normalised))
    parts["no_repetition"] = max(0.0, 1.0 - 0.5 * repeats)

    parts["ending"] = float(text.endswith(END_SENTENCE) and len(sentences) > 1)

    n_words = len(re.findall(r"[A-Za-z']+", text))
    n_sentences = len(sentences)
    (fewest, most), (fewest_words, most_words) = GOOD_SENTENCES, GOOD_WORDS
    in_range = fewest <= n_sentences <= most and fewest_words <= n_words <= most_words
    parts["length"] = 1.0 if in_range else 0.5 if 3 <= n_sentences <= 12 and 15 <= n_words <= 140 else 0.0

    real = {s for s in normalised if len(s.split()) >= 3 and not _is_echo(s, prompt)}
    parts["story"] = min(1.0, len(real) / MIN_STORY_SENTENCES)
    parts["total"] = parts["story"] * sum(w * parts[k] for k, w in GOLD_WEIGHTS.items())
    return parts


def gold_rubric() -> list[tuple[str, float, str]]:
    """The gold judge's parts as a rubric for people: (part, weight, sentence), in GOLD_WEIGHTS's order.

    Made from GOLD_WEIGHTS, so the rubric a ranker reads and the score the judge gives cannot drift apart;
    a part without a sentence in GOLD_RUBRIC is a `KeyError` here (and in the unit tests), not a gap on screen.
    """
    return [(part, weight, GOLD_RUBRIC[part]) for part, weight in GOLD_WEIGHTS.items()]


def gold_score(prompt: str, response: str) -> float:
    """The hidden gold preference in [0, 1]: how much a careful human would like `response` to `prompt`."""
    return gold_breakdown(prompt, response)["total"]


def bad_habits(text: str) -> list[str]:
    """Which of the internet's bad habits a text shows: 'rude', 'spam', 'ramble', 'repetition'."""
    lower = text.lower()
    sentences = [s.lower() for s in split_sentences(text)]
    found = [
        habit
        for habit, markers in (("rude", RUDE_WORDS), ("spam", SPAM_PHRASES), ("ramble", RAMBLE_MARKERS))
        if any(m in lower for m in markers)
    ]
    if len(sentences) != len(set(sentences)):
        found.append("repetition")
    return found
