"""Simulated annotators: stand-ins for the people who rank answers, noisy and biased in ways we choose.

Each annotator gives every answer a score and samples a ranking from the scores with Plackett–Luce at a
temperature T: the lower T, the more often the better answer comes first (for two answers this is
Bradley–Terry, `preference_probability`). `GoldAnnotator` scores with the world's hidden gold judge
(`world.gold_score`): a careful but noisy person. Its subclasses add what people reward besides quality:
`LengthBiasedAnnotator` (long answers), `PositionBiasedAnnotator` (the answer read first) and
`MoodBiasedAnnotator` (cheerful stories, whatever was asked for). Each is seeded per item, so an item gets
the same ranking however often, and in whatever order, the items are ranked.

`simulate_rankings` writes an annotator's rankings into its own preference file (`simulated_store`), in the
format of people's rankings, so everything downstream reads both the same way.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from rlhf_course.feedback.annotator_names import validate_annotator_name
from rlhf_course.feedback.preference_records import item_key, validate_item
from rlhf_course.feedback.preference_store import PreferenceStore, set_aside_if_stale
from rlhf_course.feedback.rankings import Ranking
from rlhf_course.world import MOOD_WORDS, gold_score, moods_shown

# --------------------------------------------------------------------------------------------------
# Noise: Bradley–Terry and Plackett–Luce
# --------------------------------------------------------------------------------------------------


def preference_probability(score_difference: float, temperature: float) -> float:
    """Bradley–Terry: P(the better of two answers is preferred) = σ(Δ / T) = 1 / (1 + exp(−Δ / T)).

    How noisy a temperature is, for two answers whose gold scores differ by Δ = 0.1:
    T = 0.02 → 0.99, T = 0.05 → 0.88, T = 0.1 → 0.73, T = 0.2 → 0.62; T = 0 never errs.
    """
    if temperature == 0:
        return 1.0 if score_difference > 0 else 0.5 if score_difference == 0 else 0.0
    return 1.0 / (1.0 + math.exp(-score_difference / temperature))


def plackett_luce_ranking(scores: list[float], temperature: float, rng: random.Random) -> Ranking:
    """Sample an order best → worst: repeatedly pick the next-best of the remaining answers with
    P(i) = exp(s_i / T) / Σ_remaining exp(s_j / T) (Plackett–Luce; for two answers this is Bradley–Terry).

    T = 0 gives the exact order by score, with equal scores as ties.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, not {temperature}")
    if temperature == 0:
        return [[i for i, s in enumerate(scores) if s == level] for level in sorted(set(scores), reverse=True)]
    remaining = list(range(len(scores)))
    order = []
    while remaining:
        top = max(scores[i] for i in remaining)  # subtract the max: exp never overflows
        weights = [math.exp((scores[i] - top) / temperature) for i in remaining]
        order.append(remaining.pop(rng.choices(range(len(remaining)), weights=weights)[0]))
    return [[i] for i in order]


# --------------------------------------------------------------------------------------------------
# The gold annotator and its biased variants
# --------------------------------------------------------------------------------------------------


def _item_rng(seed: int, name: str, prompt: str, answers: list[str]) -> random.Random:
    """A generator fixed by (seed, annotator, item): the same item gets the same ranking in any order."""
    return random.Random(f"{seed}|{name}|{item_key(prompt, answers)}")


class GoldAnnotator:
    """A careful but noisy person: Plackett–Luce sampling from `gold_score` with a temperature.

    `temperature` sets the noise (see `preference_probability`): at T = 0.05 the better of two answers
    whose gold differs by 0.1 is preferred 88% of the time. T = 0 ranks exactly by gold (ties when equal).
    """

    def __init__(self, temperature: float = 0.05, seed: int = 0, name: str = "gold"):
        self.temperature = temperature
        self.seed = seed
        self.name = validate_annotator_name(name)

    def scores(self, prompt: str, answers: list[str]) -> list[float]:
        return [gold_score(prompt, answer) for answer in answers]

    def rank(self, prompt: str, answers: list[str]) -> Ranking:
        validate_item(prompt, answers)
        rng = _item_rng(self.seed, self.name, prompt, answers)
        return plackett_luce_ranking(self.scores(prompt, answers), self.temperature, rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, temperature={self.temperature}, seed={self.seed})"


def normalised_lengths(answers: list[str]) -> list[float]:
    """Each answer's word count divided by the longest answer's (in [0, 1])."""
    lengths = [len(answer.split()) for answer in answers]
    longest = max(lengths) or 1
    return [length / longest for length in lengths]


class LengthBiasedAnnotator(GoldAnnotator):
    """Likes long answers: score = gold + bias · (words / words of the longest answer)."""

    def __init__(self, bias: float = 0.5, temperature: float = 0.05, seed: int = 0, name: str = "length-biased"):
        super().__init__(temperature, seed, name)
        self.bias = bias

    def scores(self, prompt: str, answers: list[str]) -> list[float]:
        gold = super().scores(prompt, answers)
        return [g + self.bias * length for g, length in zip(gold, normalised_lengths(answers), strict=True)]


class PositionBiasedAnnotator(GoldAnnotator):
    """Likes what it reads first: score = gold + bias · (1 − position / (K − 1)); the first answer gets +bias."""

    def __init__(self, bias: float = 0.3, temperature: float = 0.05, seed: int = 0, name: str = "position-biased"):
        super().__init__(temperature, seed, name)
        self.bias = bias

    def scores(self, prompt: str, answers: list[str]) -> list[float]:
        gold = super().scores(prompt, answers)
        last = len(answers) - 1
        return [g + self.bias * (1 - position / last) for position, g in enumerate(gold)]


class MoodBiasedAnnotator(GoldAnnotator):
    """Likes cheerful stories whatever was asked for: score = gold + bias when the answer shows `mood`'s words
    (`world.MOOD_WORDS`). People reward what pleases them, not only what was requested."""

    def __init__(self, mood: str = "happy", bias: float = 0.3, temperature: float = 0.05, seed: int = 0,
                 name: str | None = None):
        if mood not in MOOD_WORDS:
            raise ValueError(f"unknown mood {mood!r}; choose one of: {', '.join(MOOD_WORDS)}")
        super().__init__(temperature, seed, name or f"{mood}-biased")
        self.mood, self.bias = mood, bias

    def scores(self, prompt: str, answers: list[str]) -> list[float]:
        gold = super().scores(prompt, answers)
        return [g + self.bias * (self.mood in moods_shown(answer)) for g, answer in zip(gold, answers, strict=True)]


# --------------------------------------------------------------------------------------------------
# Simulated rankings into a preference file
# --------------------------------------------------------------------------------------------------


def simulated_store(annotator: GoldAnnotator, folder: str | Path) -> PreferenceStore:
    """The store for a simulated annotator: `<folder>/<name>.jsonl`, source `simulated:<name>`."""
    return PreferenceStore(folder, annotator.name, source=f"simulated:{annotator.name}")


def simulate_rankings(annotator: GoldAnnotator, items: list[dict], store: PreferenceStore) -> list[dict]:
    """Rank each item `{"prompt", "answers", "checkpoint"}` with `annotator` into `store`.

    Items the store has already ranked are left as they are (re-running a notebook adds nothing twice).
    A file that ranks other answers (an earlier run's candidates) is renamed aside and a new one started.
    Returns the records written. The store must be a simulated one (`simulated_store`), so simulated
    rankings never mix into people's files.
    """
    if not store.source.startswith("simulated:"):
        raise ValueError(f"{store} is a {store.source!r} store; use simulated_store(annotator, folder)")
    set_aside_if_stale(store, items)
    todo = [item for item in items if not store.has_ranked(item["prompt"], item["answers"])]
    return store.submit_many((item["prompt"], item["answers"], annotator.rank(item["prompt"], item["answers"]),
                              item.get("checkpoint", "")) for item in todo)
