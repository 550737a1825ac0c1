"""Tests for rlhf_course.feedback.rankings: a ranking's pairs, places and labels, agreement and κ, values worked out by hand."""

from __future__ import annotations

import math

import pytest

from rlhf_course.feedback.rankings import (
    answer_places,
    cohens_kappa,
    pairwise_agreement,
    preference_labels,
    ranking_from_places,
    ranking_to_pairs,
    validate_ranking,
)

ANSWERS = ["answer a", "answer b", "answer c", "answer d"]


# ---- rankings: values worked out by hand ------------------------------------------------------------


def test_ranking_to_pairs_drops_ties():
    # 2 ≻ {0, 3} ≻ 1: 2 beats three answers, 0 and 3 each beat 1, the tie 0 = 3 gives no pair
    assert ranking_to_pairs(ANSWERS, [[2], [0, 3], [1]]) == [(2, 0), (2, 3), (2, 1), (0, 1), (3, 1)]


def test_strict_ranking_gives_k_choose_2_pairs():
    assert len(ranking_to_pairs(ANSWERS, [[3], [1], [0], [2]])) == 6
    assert ranking_to_pairs(ANSWERS, [[0, 1, 2, 3]]) == []  # all tied: no preference at all


def test_preference_labels_and_places():
    assert answer_places([[2], [0, 3], [1]], 4) == [1, 2, 0, 1]
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert preference_labels([[2], [0, 3], [1]], 4) == [1, -1, 0, -1, -1, 1]


def test_ranking_from_places():
    assert ranking_from_places([1, 2, 0, 1]) == [[2], [0, 3], [1]]
    assert ranking_from_places([0, 2]) == [[0], [1]]  # gaps are fine
    with pytest.raises(ValueError, match="answer B has no place"):
        ranking_from_places([0, None, 1])


@pytest.mark.parametrize(
    "ranking, message",
    [
        ([[0], [1], [4]], "answer 4, which does not exist"),
        ([[0], [1, 1], [2], [3]], "ranked twice"),
        ([[0], [1]], r"\[2, 3\] are not ranked"),
        ([[0], [], [1, 2, 3]], "non-empty list"),
        ([], "non-empty list of groups"),
        ([[0], ["1"], [2], [3]], "integers"),
    ],
)
def test_invalid_rankings_are_rejected(ranking, message):
    with pytest.raises(ValueError, match=message):
        validate_ranking(ranking, 4)


# ---- agreement between annotators -------------------------------------------------------------------


def test_pairwise_agreement_by_hand():
    # item 1: a = 0 ≻ 1 ≻ 2, b = 0 ≻ 2 ≻ 1 → pairs (0,1) agree, (0,2) agree, (1,2) disagree
    # item 2: a = 0 ≻ 1, b = {0, 1} tie → left out
    assert pairwise_agreement([[[0], [1], [2]], [[0], [1]]], [[[0], [2], [1]], [[0, 1]]]) == pytest.approx(2 / 3)
    assert pairwise_agreement([[[0], [1]]], [[[1], [0]]]) == 0.0
    assert math.isnan(pairwise_agreement([[[0, 1]]], [[[0], [1]]]))
    with pytest.raises(ValueError, match="one ranking per item"):
        pairwise_agreement([[[0], [1]]], [])


def test_cohens_kappa_by_hand():
    # p_o = 3/4; p_e = ½·¼ + ½·¾ = ½ → κ = (¾ − ½) / (1 − ½) = ½
    assert cohens_kappa([1, 1, -1, -1], [1, -1, -1, -1]) == pytest.approx(0.5)
    assert cohens_kappa([1, -1, 0, 1], [1, -1, 0, 1]) == pytest.approx(1.0)
    assert cohens_kappa([1, -1], [-1, 1]) == pytest.approx(-1.0)
    assert cohens_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # constant and equal: no chance correction possible
