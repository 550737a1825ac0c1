"""Best-of-n, the cheapest RLHF: its exact KL and the expected score of its pick, against brute force."""

import itertools
import math
import random
import statistics

import pytest

from rlhf_course.evaluation import best_of_n_kl, best_of_n_mean


def test_best_of_n_kl_matches_the_closed_form():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert best_of_n_kl(32) == pytest.approx(2.4970, abs=1e-4)
    with pytest.raises(ValueError):
        best_of_n_kl(0)


def test_best_of_n_mean_averages_the_pick_over_every_subset():
    rng = random.Random(0)
    proxy, gold = [rng.random() for _ in range(7)], [rng.random() for _ in range(7)]
    for n in range(1, 8):
        brute = statistics.fmean(gold[max(subset, key=lambda i: proxy[i])]
                                 for subset in itertools.combinations(range(7), n))
        assert best_of_n_mean(proxy, gold, n) == pytest.approx(brute)


def test_best_of_n_mean_ends_at_the_proxy_favourite_and_starts_at_the_plain_mean():
    proxy, gold = [0.1, 0.9, 0.5, 0.3], [1.0, 0.0, 0.5, 0.5]
    assert best_of_n_mean(proxy, gold, 1) == pytest.approx(0.5)  # n = 1: one plain sample
    assert best_of_n_mean(proxy, gold, 4) == 0.0  # n = N: the answer the proxy likes best, whatever gold says
    assert best_of_n_mean(proxy, proxy, 2) > best_of_n_mean(proxy, proxy, 1)  # the proxy of the pick only rises
    with pytest.raises(ValueError):
        best_of_n_mean(proxy, gold, 5)
