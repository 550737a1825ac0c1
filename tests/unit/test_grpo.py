"""RLOO's and GRPO's advantages, the k3 KL and the clipped group loss against values worked out by hand; the loop on
a tiny model; the verifier; every bad input an error before training."""

import dataclasses
import math

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import GRPOConfig, get_profile
from rlhf_course.engine import models
from rlhf_course.phases import grpo, reward
from rlhf_course.world import verifier


def test_rloo_baseline_is_the_mean_of_the_other_answers():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 3.0]])
    # answer 0: 1 − (0 + 0 + 3)/3 = 0; answer 3: 3 − 1/3
    torch.testing.assert_close(grpo.rloo_advantages(rewards), torch.tensor([[0.0, -4 / 3, -4 / 3, 3 - 1 / 3]]))
    K = rewards.shape[1]
    torch.testing.assert_close(grpo.rloo_advantages(rewards), K / (K - 1) * (rewards - rewards.mean()))


def test_grpo_normalises_within_each_group_and_dr_grpo_does_not():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    std = math.sqrt(1 / 3)  # sample std of (1, 0, 1, 0)
    expected = torch.tensor([[0.5, -0.5, 0.5, -0.5]]) / (std + 1e-4)
    torch.testing.assert_close(grpo.grpo_advantages(rewards)[:1], expected)
    assert torch.all(grpo.grpo_advantages(rewards)[1] == 0)  # all alike: nothing to learn from this group
    torch.testing.assert_close(grpo.grpo_advantages(rewards, normalize_std=False),
                               torch.tensor([[0.5, -0.5, 0.5, -0.5], [0.0, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[1.0], [2.0]]), "at least 2 answers"),
    (torch.tensor([[1.0, float("nan")]]), "finite"),
    (torch.tensor([1.0, 2.0]), r"\(prompts, K\)"),
    ([[1.0, 2.0]], r"\(prompts, K\)"),
])
def test_bad_rewards_are_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        grpo.grpo_advantages(bad)
    with pytest.raises(ValueError, match=message):
        grpo.rloo_advantages(bad)


def test_k3_is_zero_at_equal_policies_and_never_negative():
    lp = torch.tensor([[-1.0, -2.0, -0.5]])
    assert torch.all(grpo.k3_kl(lp, lp) == 0)
    ref = torch.tensor([[-1.5, -1.0, -3.0]])
    k3 = grpo.k3_kl(lp, ref)
    assert torch.all(k3 >= 0)
    torch.testing.assert_close(k3[0, 0], torch.tensor(math.exp(-0.5) + 0.5 - 1))


def test_group_loss_at_ratio_one_and_its_two_normalisations():
    logprobs = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    advantages = torch.tensor([1.0, -2.0])
    # ratio 1: per token −A; GRPO averages each answer's tokens, then the answers: (−1 + 2)/2
    assert grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2).item() == pytest.approx(0.5)
    # Dr. GRPO: every token counts once, over B · max_tokens: (−1·3 + 2·1) / (2 · 3)
    assert grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2,
                                 length_normalize=False).item() == pytest.approx(-1 / 6)
    # a ratio past 1 + ε for a positive advantage is clipped: the loss stops rewarding it
    moved = torch.full((2, 3), math.log(1.5))
    assert grpo.grpo_policy_loss(moved, logprobs, torch.tensor([1.0, 1.0]), mask, 0.2).item() == pytest.approx(-1.2)
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo.grpo_policy_loss(logprobs, logprobs, advantages, mask, 0.2, kl_coef=0.1)


def test_group_size_from_a_budget():
    assert grpo.group_size_for(64, 16) == 4
    with pytest.raises(ValueError):
        grpo.group_size_for(64, 64)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------

SMALL = GRPOConfig(iterations=2, prompts_per_iteration=4, group_size=2, minibatch_size=4, epochs=2,
                   max_new_tokens=12, eval_every=1)
PROMPTS = world.prompt_set("ppo_train", 8)


@pytest.fixture()
def actors(tok, small_model, runs):
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    load = lambda: models.load_checkpoint("sft", "tiny", device="cpu")[0]  # noqa: E731
    torch.manual_seed(0)
    return load(), load(), reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()


@pytest.mark.parametrize("changes", [{}, {"advantage": "rloo", "kl_in": "reward"}, {"advantage": "grpo"}])
def test_a_short_run_updates_the_policy_and_keeps_the_reference(tok, actors, changes):
    policy, reference, reward_model = actors
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    state = grpo.train_grpo(policy, reference, tok, PROMPTS, dataclasses.replace(SMALL, **changes),
                            reward_model=reward_model, verifier=verifier.verifier_reward,
                            evaluate_gold=lambda m: (0.5, {"answers": [], "gold": []}))
    assert len(state.history) == 2 and all("gold" in r and "verifier" in r for r in state.history)
    first = state.history[0]
    assert 0 <= first["flat_groups"] <= 1 and 0 <= first["verifier"] <= 1
    assert first["reward"] == pytest.approx(first["reward_model"] + SMALL.verifier_weight * first["verifier"], abs=1e-5)
    assert not [n for n, p in policy.named_parameters() if torch.equal(p, before[n])]
    assert all(torch.equal(p, before[n]) for n, p in reference.named_parameters()), "the reference must stay frozen"


def test_bad_settings_name_the_setting():
    for field, value in [("group_size", 1), ("advantage", "ppo"), ("kl_in", "value"), ("lr", float("nan")),
                         ("minibatch_size", 3)]:
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(GRPOConfig(), **{field: value}).validate()


def test_bad_input_is_an_error_before_training(tok, actors):
    policy, reference, reward_model = actors
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    with pytest.raises(ValueError, match="needs a reward"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, SMALL)
    with pytest.raises(ValueError, match="group_size"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, dataclasses.replace(SMALL, group_size=1),
                        reward_model=reward_model)
    with pytest.raises(ValueError, match="prompt 1 asks for no place"):
        grpo.train_grpo(policy, reference, tok, [PROMPTS[0], "Write a story about Lily the fox."] * 2, SMALL,
                        verifier=verifier.verifier_reward)
    with pytest.raises(ValueError, match="returned 'yes'.*finite number"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, SMALL, verifier=lambda prompt, answer: "yes")
    with pytest.raises(ValueError, match="returned nan"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, SMALL, verifier=lambda prompt, answer: float("nan"))
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters())


def test_a_verifier_that_fails_later_names_the_answer(tok, actors):
    policy, reference, _ = actors
    calls = []

    def flaky(prompt, answer):
        calls.append(answer)
        return float("inf") if len(calls) > 3 else 1.0

    with pytest.raises(ValueError, match="returned inf for answer 2"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, SMALL, verifier=flaky)


def test_nan_loss_stops_with_the_policy_restored(tok, actors, monkeypatch):
    policy, reference, reward_model = actors
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    monkeypatch.setattr(grpo, "grpo_policy_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(FloatingPointError, match="GRPO stopped.*restored"):
        grpo.train_grpo(policy, reference, tok, PROMPTS, SMALL, reward_model=reward_model)
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters())


# --------------------------------------------------------------------------------------------------
# The verifier
# --------------------------------------------------------------------------------------------------


def test_the_verifier_checks_the_letter_of_the_request():
    prompt = "Write a happy story about a fox named Lily in the forest."
    story = world.write_story(world.parse_request(prompt), __import__("random").Random(0))
    assert verifier.verify_answer(prompt, story) == {p: 1.0 for p in verifier.VERIFIED_PARTS}
    assert verifier.verifier_reward(prompt, story) == 1.0
    wrong = story.replace("Lily", "Tom").replace("forest", "park")
    assert verifier.verify_answer(prompt, wrong)["name"] == 0 and verifier.verify_answer(prompt, wrong)["place"] == 0
    # the letter, not the spirit: the requested words and an ending satisfy three parts, and gold says no story
    words = "Lily fox forest. The end."
    assert verifier.verify_answer(prompt, words) == {"name": 1, "animal": 1, "place": 1, "ending": 1, "length": 0}
    assert world.gold_score(prompt, words) < 0.3
