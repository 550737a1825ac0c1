"""Rankings and agreement: what a person's ranking of a model's answers says, and how far two people agree.

This is where RLHF's data begins: a person ranks K answers to one prompt, and the ranking becomes the
(chosen, rejected) pairs that a reward model (notebook 03) and DPO (notebook 06) learn from.

A ranking is a list of groups, best → worst; each group is a list of answer indices, and answers in
the same group are ties. Every answer appears exactly once: `[[2], [0, 3], [1]]` says answer 2 is best,
0 and 3 tie, 1 is worst. It implies the pairs (chosen, rejected) = (2,0) (2,3) (2,1) (0,1) (3,1): a strict
ranking of K answers implies K(K-1)/2 pairs, a tie none.

- `validate_ranking`, `ranking_from_places`, `answer_places`, `answer_letter`: what a ranking is, and how
  people name answers (A, B, …) and places (1st, 2nd, …, equal places a tie).
- `ranking_to_pairs`, `preference_labels`: a ranking as pairs, or as one label +1/0/−1 per pair of answers.
- `pairwise_agreement`, `cohens_kappa`: how often two annotators order a pair the same way, and Cohen's κ,
  the same corrected for the agreement chance alone would give.
- `krippendorff_alpha`: agreement of any number of raters, each rating only some units, corrected for chance
  (a class: `class_numbers`); `majority_label` and `label_agreement`, a student against the rest of the class.

Pure functions: no files, no randomness. Where rankings are kept: `preference_store`; the simulated
annotators that make most of them: `annotators`.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Sequence

Ranking = list[list[int]]  # groups of answer indices, best → worst; a group holds tied answers


# --------------------------------------------------------------------------------------------------
# Rankings: validation, pairs and labels (pure functions)
# --------------------------------------------------------------------------------------------------


def validate_ranking(ranking: object, n_answers: int) -> Ranking:
    """`ranking` as a list of lists of int, if it ranks each of `n_answers` answers exactly once.

    Raises `ValueError` naming the problem: not a list of groups, an empty group, an answer that does
    not exist, an answer ranked twice, or an answer left out.
    """
    if not isinstance(ranking, (list, tuple)) or not ranking:
        raise ValueError(f"a ranking is a non-empty list of groups such as [[2], [0, 3], [1]], not {ranking!r}")
    seen: set[int] = set()  # a set: checking each index is O(1), so validating K answers is O(K), not O(K²)
    for group in ranking:
        if not isinstance(group, (list, tuple)) or not group:
            raise ValueError(f"each group of a ranking is a non-empty list of answer indices, not {group!r}")
        for index in group:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ValueError(f"answer indices are integers, not {index!r}")
            if not 0 <= index < n_answers:
                raise ValueError(
                    f"the ranking names answer {index}, which does not exist: there are {n_answers} answers "
                    f"(indices 0 to {n_answers - 1})"
                )
            if index in seen:
                raise ValueError(f"answer {index} is ranked twice; each answer goes in exactly one group")
            seen.add(index)
    missing = sorted(set(range(n_answers)) - seen)
    if missing:
        raise ValueError(f"answer(s) {missing} are not ranked: give every answer a place")
    return [list(group) for group in ranking]


def answer_letter(index: int) -> str:
    """How people see answer `index`: A … Z, then AA, AB … AZ, BA …, like spreadsheet columns, so every
    answer has a name however many there are (data files use 0-based indices)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"answer indices are integers >= 0, not {index!r}")
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def ranking_from_places(places: list[int | None]) -> Ranking:
    """Turn per-answer places (0 = best; equal places = tie) into a ranking.

    `[1, 2, 0, 1]` → `[[2], [0, 3], [1]]`. Gaps are fine (`[0, 2]` → `[[0], [1]]`). A `None` place
    (answer not placed yet) raises `ValueError` naming the answers by letter (A = index 0).
    """
    unplaced = [i for i, place in enumerate(places) if place is None]
    if unplaced:
        names = ", ".join(answer_letter(i) for i in unplaced)
        raise ValueError(f"answer {names} has no place yet: give every answer a place (equal places = a tie)")
    return [[i for i, place in enumerate(places) if place == p] for p in sorted(set(places))]


def ranking_to_pairs(answers: list[str], ranking: Ranking) -> list[tuple[int, int]]:
    """All (chosen, rejected) index pairs a ranking implies; tied answers give no pair.

    With groups G_1 ≻ G_2 ≻ … ≻ G_m: pairs = {(a, b) : a ∈ G_i, b ∈ G_j, i < j}. A strict ranking of
    K answers gives K(K-1)/2 pairs; `[[2], [0, 3], [1]]` gives 5 (the tie 0 = 3 gives none).
    """
    ranking = validate_ranking(ranking, len(answers))
    return [
        (chosen, rejected)
        for i, better in enumerate(ranking)
        for worse in ranking[i + 1 :]
        for chosen in better
        for rejected in worse
    ]


def answer_places(ranking: Ranking, n_answers: int) -> list[int]:
    """The place (group number, 0 = best) of each answer: `[[2], [0, 3], [1]]` → `[1, 2, 0, 1]`."""
    ranking = validate_ranking(ranking, n_answers)
    places = [0] * n_answers
    for place, group in enumerate(ranking):
        for index in group:
            places[index] = place
    return places


def preference_labels(ranking: Ranking, n_answers: int) -> list[int]:
    """One label per answer pair (i, j), i < j, in `itertools.combinations` order.

    label(i, j) = +1 if i is ranked above j, −1 if below, 0 if they tie.
    `preference_labels([[2], [0, 3], [1]], 4)` → pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3) → [1, -1, 0, -1, -1, 1].
    """
    places = answer_places(ranking, n_answers)
    pairs = itertools.combinations(range(n_answers), 2)
    return [int(places[i] < places[j]) - int(places[i] > places[j]) for i, j in pairs]


# --------------------------------------------------------------------------------------------------
# Agreement between annotators (pure functions)
# --------------------------------------------------------------------------------------------------


def _ranking_size(ranking: Ranking) -> int:
    return sum(len(group) for group in ranking)


def pairwise_agreement(rankings_a: list[Ranking], rankings_b: list[Ranking]) -> float:
    """Share of answer pairs that both annotators order the same way; pairs either calls a tie are left out.

    agreement = #{pairs (i, j): label_a = label_b ≠ 0} / #{pairs: label_a ≠ 0 and label_b ≠ 0},
    over all items (rankings_a[k] and rankings_b[k] rank the same answers). 1 = always agree,
    0.5 = chance for a coin-flipping annotator, 0 = always opposite. NaN when no pair is strict for both.
    """
    if len(rankings_a) != len(rankings_b):
        raise ValueError(f"need one ranking per item from each annotator, got {len(rankings_a)} and {len(rankings_b)}")
    agree = counted = 0
    for ranking_a, ranking_b in zip(rankings_a, rankings_b, strict=True):
        n_answers = _ranking_size(ranking_a)  # both rank the same answers: a size mismatch raises below
        for a, b in zip(preference_labels(ranking_a, n_answers), preference_labels(ranking_b, n_answers), strict=True):
            if a != 0 and b != 0:
                counted += 1
                agree += a == b
    return agree / counted if counted else math.nan


def cohens_kappa(labels_a: list[int], labels_b: list[int]) -> float:
    """Cohen's κ between two annotators' labels for the same items (here pairwise labels +1/0/−1).

    κ = (p_o − p_e) / (1 − p_e), with p_o = share of items with equal labels (observed agreement) and
    p_e = Σ_c p_a(c)·p_b(c) the agreement expected by chance from each annotator's label frequencies.
    κ = 1 perfect, 0 no better than chance, < 0 worse than chance. Cohen (1960), Eq. 1.
    Example: a = [1, 1, −1, −1], b = [1, −1, −1, −1] → p_o = 3/4, p_e = ½·¼ + ½·¾ = ½, κ = ½.
    """
    if len(labels_a) != len(labels_b) or not labels_a:
        raise ValueError(f"need two equally long, non-empty label lists, got {len(labels_a)} and {len(labels_b)}")
    n = len(labels_a)
    p_observed = sum(a == b for a, b in zip(labels_a, labels_b, strict=True)) / n
    categories = set(labels_a) | set(labels_b)
    p_chance = sum(labels_a.count(c) * labels_b.count(c) for c in categories) / n**2
    if p_chance == 1.0:  # both always give the same single label: they agree, and chance predicts it
        return 1.0
    return (p_observed - p_chance) / (1.0 - p_chance)


def _ordinal_distance(n_by_value: dict, c, k) -> float:
    """Krippendorff's ordinal δ²(c, k) = (Σ_{g from c to k} n_g − (n_c + n_k) / 2)², g over the values used."""
    low, high = min(c, k), max(c, k)
    between = sum(n for value, n in n_by_value.items() if low <= value <= high)
    return (between - (n_by_value[c] + n_by_value[k]) / 2) ** 2


def krippendorff_alpha(units: Iterable[Sequence], level: str = "nominal") -> float:
    """Krippendorff's α: agreement of any number of raters, corrected for chance, with missing ratings.

    `units`: for each unit (a thing rated), the values of the raters who rated it (missing ones left out).
    Units with fewer than two values are not pairable and are left out. With the coincidences
    o_ck = Σ_u (ordered pairs of values (c, k) in unit u from different raters) / (m_u − 1),
    n_c = Σ_k o_ck and n = Σ_c n_c:

        α = 1 − D_o / D_e,   D_o = (1/n) Σ_c Σ_k o_ck δ²(c, k),   D_e = 1/(n(n − 1)) Σ_c Σ_k n_c n_k δ²(c, k)

    δ²: nominal 1 if c ≠ k else 0; interval (c − k)²; ordinal (Σ_{g from c to k} n_g − (n_c + n_k)/2)².
    α = 1 perfect agreement, 0 what chance gives, < 0 systematic disagreement. NaN when no unit is pairable
    or only one value occurs (nothing to disagree about). Krippendorff (2011), "Computing Krippendorff's
    Alpha-Reliability", Annenberg School for Communication, Departmental Papers 43; its worked example (4
    raters, 12 units, missing values) gives nominal 0.743, ordinal 0.815, interval 0.849 (tested).
    """
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', not {level!r}")
    coincidences: dict[tuple, float] = {}
    for values in units:
        values = list(values)
        if len(values) < 2:
            continue
        counts: dict = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - (c == k))  # ordered pairs from two different raters
                if pairs:
                    coincidences[c, k] = coincidences.get((c, k), 0.0) + pairs / (len(values) - 1)
    n_by_value: dict = {}
    for (c, _k), o in coincidences.items():
        n_by_value[c] = n_by_value.get(c, 0.0) + o
    n = sum(n_by_value.values())
    if len(n_by_value) < 2:
        return math.nan

    def delta(c, k) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return float(c - k) ** 2
        return _ordinal_distance(n_by_value, c, k)

    observed = sum(o * delta(c, k) for (c, k), o in coincidences.items()) / n
    expected = sum(n_by_value[c] * n_by_value[k] * delta(c, k) for c in n_by_value for k in n_by_value) / (n * (n - 1))
    return 1.0 - observed / expected


def majority_label(labels: Iterable[int]) -> int:
    """The majority of +1/0/−1 labels: the sign of their sum (0 when the votes cancel)."""
    total = sum(labels)
    return (total > 0) - (total < 0)


def label_agreement(pairs: Iterable[tuple[int, int]]) -> tuple[float, int]:
    """Share of (label, reference) pairs that agree, over those where neither is 0 (a tie or too close);
    `(share, pairs counted)`, NaN when none counts."""
    counted = [a == b for a, b in pairs if a and b]
    return (sum(counted) / len(counted) if counted else math.nan), len(counted)
