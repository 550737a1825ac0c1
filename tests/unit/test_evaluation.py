"""Evaluation by value: the win rate by hand, on cases with more wins than losses, so that every way of getting ties
wrong gives another number (a tie counts half a win and stays in the denominator; a tie is a difference within the
margin, either way); best-of-n, the cheapest RLHF, its exact KL and the expected score of its pick, against brute
force; the gold evaluation the RL loops call every few iterations."""

import itertools
import math
import random
import statistics

import pytest

from rlhf_course.phases import evaluation
from rlhf_course.phases.evaluation import best_of_n_kl, best_of_n_mean, win_rate


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


def test_best_of_n_keeps_the_answer_the_reward_model_scores_highest(tok, small_model, runs):
    import dataclasses

    import torch

    from rlhf_course import world
    from rlhf_course.config import SamplingConfig, get_profile
    from rlhf_course.engine import models
    from rlhf_course.phases import reward
    from rlhf_course.phases.evaluation import best_of_n

    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    torch.manual_seed(0)
    reward_model = reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()
    sampling = dataclasses.replace(SamplingConfig(), max_new_tokens=16, batch_size=8)
    prompts = world.prompt_set("evaluation", 3)
    picks, samples = best_of_n(small_model, tok, reward_model, sampling, 4, prompts)
    assert len(samples["proxy"]) == len(samples["gold"]) == 12 and picks.answers.prompts == prompts
    for i in range(3):
        best = max(range(4 * i, 4 * i + 4), key=samples["proxy"].__getitem__)
        assert picks.scores[i] == pytest.approx(samples["gold"][best])
        assert reward.score_texts(reward_model, tok, [prompts[i]], [picks.answers.texts[i]])[0] == pytest.approx(
            samples["proxy"][best], abs=1e-4)


def test_the_gold_evaluator_returns_the_gold_mean_and_the_first_answers(monkeypatch):
    """What notebooks 04 and 07 hand their RL loop: `evaluation.evaluate` on the given prompts, its gold mean, and
    the first `shown` answers with their gold scores for the dashboard."""
    from rlhf_course.config import SamplingConfig
    from rlhf_course.engine.generation import Answers

    prompts = ["p1", "p2", "p3", "p4"]
    calls = []

    def fake_evaluate(model, tokenizer, sampling, prompts=None):
        calls.append((model, tokenizer, sampling, prompts))
        answers = Answers(prompts, ["a1", "a2", "a3", "a4"], [1, 2, 3, 4], [True] * 4)
        return evaluation.GoldEval(answers, [{"total": t} for t in (0.2, 0.4, 0.6, 1.0)])

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    sampling = SamplingConfig()
    evaluate_gold = evaluation.gold_evaluator("tok", sampling, prompts, shown=2)
    gold_mean, samples = evaluate_gold("policy")
    assert calls == [("policy", "tok", sampling, prompts)]
    assert gold_mean == pytest.approx(0.55) and samples == {"answers": ["a1", "a2"], "gold": [0.2, 0.4]}
