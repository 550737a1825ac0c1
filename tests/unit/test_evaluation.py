"""Best-of-n, the cheapest RLHF: its exact KL and the expected score of its pick, against brute force."""

import itertools
import math
import random
import statistics

import pytest

from rlhf_course.phases.evaluation import best_of_n_kl, best_of_n_mean


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
