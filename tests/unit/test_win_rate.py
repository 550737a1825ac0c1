"""The win rate by hand, on cases with more wins than losses, so that every way of getting ties wrong gives another
number: a tie counts half a win and stays in the denominator; a tie is a difference within the margin, either way."""

import pytest

from rlhf_course.phases.evaluation import win_rate


def test_ties_count_half_and_stay_in_the_denominator():
    """win, tie, loss, tie, win: (1 + ½ + 0 + ½ + 1)/5 = 0.6.
    (Ties left out of the denominator: 2/3; ties as losses: 0.4; ties as wins: 0.8.)"""
    assert win_rate([0.9, 0.5, 0.5, 0.1, 0.8], [0.1, 0.5, 0.6, 0.1, 0.2]) == pytest.approx(0.6)


def test_a_tie_is_a_difference_within_the_margin_on_either_side():
    """Margin 0.01: +0.005, +0.004 and −0.004 are ties, +0.4 a win: (½ + ½ + ½ + 1)/4 = 0.625.
    (Ties only where equal: (1 + 1 + 0 + 1)/4 = 0.75; any a > b a win: (1 + 1 + ½ + 1)/4 = 0.875.)"""
    assert win_rate([0.3, 0.3, 0.3, 0.5], [0.295, 0.296, 0.304, 0.1], tie_margin=0.01) == pytest.approx(0.625)
    # a difference of exactly the margin is a tie (0.5 − 0.25 = 0.25, exact in binary)
    assert win_rate([0.5, 0.25], [0.25, 0.5], tie_margin=0.25) == 0.5
    assert win_rate([0.5], [0.25], tie_margin=0.25) == 0.5
    # the default margin absorbs rounding: 0.1 + 0.2 is 0.30000000000000004
    assert win_rate([0.1 + 0.2, 1.0], [0.3, 0.0]) == pytest.approx(0.75)


def test_the_two_win_rates_of_a_pair_add_up_to_one():
    a, b = [0.9, 0.5, 0.5, 0.1, 0.8, 0.3], [0.1, 0.5, 0.6, 0.1, 0.2, 0.3]
    assert win_rate(a, b) == pytest.approx(3.5 / 6)  # 1 + ½ + 0 + ½ + 1 + ½
    assert win_rate(a, b) + win_rate(b, a) == pytest.approx(1.0)


@pytest.mark.parametrize("scores, baseline", [([], []), ([0.1, 0.2], [0.1])])
def test_lists_that_cannot_be_compared_are_an_error(scores, baseline):
    with pytest.raises(ValueError, match="equally long, non-empty"):
        win_rate(scores, baseline)
