"""Tests for rlhf_course.feedback.annotators: Bradley–Terry and Plackett–Luce noise, the gold annotator and its biased
variants, simulated rankings written into a store.

Everything writes under pytest's tmp_path, never into the repository's data/.
"""

from __future__ import annotations

import json
import math
import random
import re
from itertools import combinations

import pytest

from rlhf_course import world
from rlhf_course.feedback.annotators import (
    GoldAnnotator,
    LengthBiasedAnnotator,
    MoodBiasedAnnotator,
    PositionBiasedAnnotator,
    plackett_luce_ranking,
    preference_probability,
    simulate_rankings,
    simulated_store,
)
from rlhf_course.feedback.preference_loading import load_preferences
from rlhf_course.feedback.preference_store import PreferenceStore, set_aside_if_stale
from rlhf_course.feedback.rankings import answer_places, pairwise_agreement


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- Bradley–Terry and Plackett–Luce ----------------------------------------------------------------


def test_bradley_terry_probability_by_hand():
    assert preference_probability(0.0, 0.1) == 0.5
    assert preference_probability(0.1, 0.1) == pytest.approx(1 / (1 + math.exp(-1)))  # 0.731
    assert preference_probability(0.1, 0.05) == pytest.approx(0.8808, abs=1e-4)
    assert preference_probability(0.1, 0.0) == 1.0


def test_plackett_luce_two_answers_is_bradley_terry():
    rng = random.Random(0)
    n = 4000
    wins = sum(plackett_luce_ranking([0.6, 0.5], 0.1, rng)[0] == [0] for _ in range(n))
    assert wins / n == pytest.approx(preference_probability(0.1, 0.1), abs=0.025)
    assert plackett_luce_ranking([0.2, 0.9, 0.2], 0.0, rng) == [[1], [0, 2]]  # T = 0: exact, ties kept


# ---- simulated annotators ---------------------------------------------------------------------------


def make_items(n: int, seed: int = 0) -> list[dict]:
    """`n` prompts from the world, each with 4 stories damaged in different ways (so gold differs)."""
    rng = random.Random(seed)
    flaw_sets = [(), ("rude",), ("spam", "repeat"), ("no_ending",), ("ramble",), ("wrong_mood",)]
    items = []
    for request in world.make_requests(n, "train", seed):
        answers = [world.write_story(request, rng, flaws) for flaws in rng.sample(flaw_sets, 4)]
        items.append({"prompt": world.make_instruction(request, rng), "answers": answers, "checkpoint": "test"})
    return items


ITEMS = make_items(150)


def rank_all(annotator, items=ITEMS):
    return [annotator.rank(item["prompt"], item["answers"]) for item in items]


def share_preferring(rankings, items, better) -> float:
    """Share of strictly ordered pairs (i, j) in which the annotator puts first the answer `better` picks."""
    hits = total = 0
    for ranking, item in zip(rankings, items, strict=True):
        places = answer_places(ranking, len(item["answers"]))
        for i, j in combinations(range(len(item["answers"])), 2):
            favoured = better(item["answers"], i, j)
            if places[i] != places[j] and favoured is not None:
                total += 1
                hits += (places[i] < places[j]) == (favoured == i)
    return hits / total


def test_gold_annotator_is_deterministic_and_seeded():
    first = rank_all(GoldAnnotator(temperature=0.1, seed=3))
    assert first == rank_all(GoldAnnotator(temperature=0.1, seed=3))
    assert first != rank_all(GoldAnnotator(temperature=0.1, seed=4))
    # order-independent: an item gets the same ranking whatever was ranked before it
    assert rank_all(GoldAnnotator(temperature=0.1, seed=3), ITEMS[::-1]) == first[::-1]


def test_gold_annotator_at_low_temperature_agrees_with_gold():
    gold_order = rank_all(GoldAnnotator(temperature=0.0))
    assert pairwise_agreement(rank_all(GoldAnnotator(temperature=0.02)), gold_order) > 0.9
    noisy = pairwise_agreement(rank_all(GoldAnnotator(temperature=0.2)), gold_order)
    assert 0.55 < noisy < 0.85  # noisy like people, still better than chance


def test_length_biased_annotator_prefers_longer_answers():
    def longer(answers, i, j):
        words = [len(answer.split()) for answer in answers]
        return None if words[i] == words[j] else max(i, j, key=words.__getitem__)

    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05)), ITEMS, longer)
    biased = share_preferring(rank_all(LengthBiasedAnnotator(bias=0.5, temperature=0.05)), ITEMS, longer)
    assert biased > gold + 0.15, (gold, biased)


def test_position_biased_annotator_prefers_first_positions():
    def earlier(answers, i, j):
        return min(i, j)

    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05)), ITEMS, earlier)
    biased = share_preferring(rank_all(PositionBiasedAnnotator(bias=0.3, temperature=0.05)), ITEMS, earlier)
    assert abs(gold - 0.5) < 0.1 and biased > gold + 0.15, (gold, biased)


def test_mood_biased_annotator_prefers_cheerful_answers_to_other_requests():
    happy_words = set(world.MOOD_WORDS["happy"])

    def happier(answers, i, j):
        shows = [bool(happy_words & set(re.findall(r"[a-z]+", a.lower()))) for a in answers]
        return None if shows[i] == shows[j] else (i if shows[i] else j)

    asked_other = [it for it in ITEMS if world.parse_request(it["prompt"]).mood != "happy"]
    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05), asked_other), asked_other, happier)
    biased = share_preferring(rank_all(MoodBiasedAnnotator("happy", bias=0.3, temperature=0.05), asked_other),
                              asked_other, happier)
    assert biased > gold + 0.15, (gold, biased)
    with pytest.raises(ValueError, match="unknown mood"):
        MoodBiasedAnnotator("grumpy")


# ---- simulated rankings into a store ----------------------------------------------------------------


def test_simulate_rankings_into_a_store(tmp_path):
    annotator = GoldAnnotator(temperature=0.05, seed=1)
    store = simulated_store(annotator, tmp_path)
    written = simulate_rankings(annotator, ITEMS[:20], store)
    assert len(written) == 20 and store.path == tmp_path / "gold.jsonl"
    assert {r["source"] for r in lines(store.path)} == {"simulated:gold"}
    assert len(simulate_rankings(annotator, ITEMS[:25] + ITEMS[22:25], store)) == 5
    assert len(lines(store.path)) == 25  # re-running adds only the 5 new items, each once
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 25 * 6 and set(dataset["source"]) == {"simulated:gold"}
    with pytest.raises(ValueError, match="simulated_store"):
        simulate_rankings(annotator, ITEMS[:1], PreferenceStore(tmp_path, "ana"))


def test_simulated_rankings_of_an_earlier_run_are_set_aside_not_mixed_in(tmp_path):
    # Notebook 02 re-run → new SFT answers → notebook 03 ranks new items: the old file must not be trained on.
    annotator = GoldAnnotator(temperature=0.05, seed=1)
    store = simulated_store(annotator, tmp_path)
    simulate_rankings(annotator, ITEMS[:20], store)
    assert len(simulate_rankings(annotator, ITEMS[20:30], store)) == 10
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 10 * 6
    (aside,) = tmp_path.glob("gold.jsonl.replaced-*")
    assert len(lines(aside)) == 20  # kept beside, not deleted


def test_a_stale_widget_demo_file_is_set_aside_and_a_current_one_kept(tmp_path):
    store = PreferenceStore(tmp_path, "instructor-demo")
    store.submit(ITEMS[0]["prompt"], ITEMS[0]["answers"], [[0], [1], [2], [3]], "sft")
    assert set_aside_if_stale(store, ITEMS[:3]) is None and len(store.records()) == 1  # same items: kept
    aside = set_aside_if_stale(store, ITEMS[5:8])  # notebook 02 re-ran: these are other answers
    assert aside is not None and len(lines(aside)) == 1 and store.records() == []
    assert not store.path.exists() and load_preferences(tmp_path)[0].num_rows == 0
