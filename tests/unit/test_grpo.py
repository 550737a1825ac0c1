"""RLOO's and GRPO's advantages and the clipped group loss against values worked out by hand; GRPO's KL penalty in the
loss, β·k3, by value (its size under both normalisations, its direction, the mask, its gradient); the loop on a tiny
model, which passes β to the loss only with `kl_in="loss"` and takes the loss's normalisation from its own setting;
the verifier; every bad input an error before training. (k3 itself: test_rl.py.)"""

import dataclasses
import math

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import PROFILES, GRPOConfig, get_profile
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


def test_the_advantage_table_names_each_variant():
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [2.0, 0.0, 1.0, 1.0]])
    assert grpo.ADVANTAGES == {"grpo": grpo.grpo_advantages, "dr_grpo": grpo.dr_grpo_advantages,
                               "rloo": grpo.rloo_advantages}
    torch.testing.assert_close(grpo.dr_grpo_advantages(rewards), rewards - rewards.mean(1, keepdim=True))


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


LN2 = math.log(2)


def _batch():
    """Two answers, T = 3; answer 0 has 2 tokens, answer 1 has 1. log π_ref − log π per token:
    answer 0: (ln 2, −ln 2), answer 1: (−ln 2); the masked columns hold garbage (5, 3, −4) that must not count.
    k3 = e^x − x − 1 at x = ln 2: 2 − ln 2 − 1 = 1 − ln 2 = 0.306853;
    at x = −ln 2: ½ + ln 2 − 1 = ln 2 − ½ = 0.193147."""
    logprobs = torch.tensor([[-1.0, -1.5, -0.7], [-2.0, -0.3, -0.9]])
    log_ratio = torch.tensor([[LN2, -LN2, 5.0], [-LN2, 3.0, -4.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    return logprobs, logprobs + log_ratio, mask


def test_the_kl_term_of_the_loss_by_hand():
    """Ratio 1 and advantage 0, so the loss is β·k3 alone (β = ½).
    GRPO: each answer's mean, then the answers' mean: answer 0 ((1 − ln 2) + (ln 2 − ½))/2 = ¼, answer 1 ln 2 − ½,
    L = ½ · (¼ + ln 2 − ½)/2 = 0.110787. (π and π_ref swapped: answer 1 would be 1 − ln 2 and L = 0.139213.)
    Dr. GRPO: every answer token once over B·max_tokens = 2·3: ½ · ((1 − ln 2) + 2(ln 2 − ½))/6 = ½ · ln 2/6."""
    logprobs, ref, mask = _batch()
    zero = torch.zeros(2)
    loss = grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref, kl_coef=0.5)
    assert loss.item() == pytest.approx(0.5 * (0.25 + LN2 - 0.5) / 2, abs=1e-6)
    dr = grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref, kl_coef=0.5,
                               length_normalize=False, max_tokens=3)
    assert dr.item() == pytest.approx(0.5 * LN2 / 6, abs=1e-6)
    # the two terms add: advantages (1, −2) at ratio 1 give −A per token, (−1 + 2)/2 = ½ under GRPO's averaging
    both = grpo.grpo_policy_loss(logprobs, logprobs, torch.tensor([1.0, -2.0]), mask, 0.2, ref_logprobs=ref,
                                 kl_coef=0.5)
    assert both.item() == pytest.approx(0.5 + 0.5 * (0.25 + LN2 - 0.5) / 2, abs=1e-6)
    # β = 0 leaves the clipped term alone, whatever the reference says
    assert grpo.grpo_policy_loss(logprobs, logprobs, zero, mask, 0.2, ref_logprobs=ref).item() == 0.0


def test_the_kl_term_pulls_each_token_toward_the_reference():
    """∂k3/∂log π = 1 − π_ref/π = 1 − e^x: −1 where π_ref = 2π (x = ln 2), ½ where π_ref = π/2. Times β = ½ and the
    averaging weights (1/(2 tokens · 2 answers) for answer 0, 1/(1 · 2) for answer 1):
    (−0.125, 0.0625, 0) and (0.125, 0, 0). Gradient descent raises log π where the reference finds the token more
    likely and lowers it where less."""
    logprobs, ref, mask = _batch()
    logprobs = logprobs.clone().requires_grad_(True)
    old = logprobs.detach().clone()
    grpo.grpo_policy_loss(logprobs, old, torch.zeros(2), mask, 0.2, ref_logprobs=ref, kl_coef=0.5).backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[-0.125, 0.0625, 0.0], [0.125, 0.0, 0.0]]))


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
ONE_UPDATE = GRPOConfig(iterations=1, prompts_per_iteration=2, group_size=2, minibatch_size=4, epochs=1,
                        max_new_tokens=8, kl_coef=0.3)


@pytest.fixture()
def actors(tok, small_model, runs):
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    load = lambda: models.load_checkpoint("sft", "tiny", device="cpu")[0]  # noqa: E731
    torch.manual_seed(0)
    return load(), load(), reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()


@pytest.mark.parametrize("changes", [{}, {"advantage": "rloo", "kl_in": "reward"},
                                     {"advantage": "grpo", "loss_normalization": "answer_length"}])
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


@pytest.mark.parametrize("kl_in, passed", [("loss", 0.3), ("reward", 0.0)])
def test_the_loop_puts_beta_in_the_loss_only_with_kl_in_loss(tok, actors, monkeypatch, kl_in, passed):
    policy, reference, reward_model = actors
    calls, loss = [], grpo.grpo_policy_loss

    def spy(logprobs, old_logprobs, advantages, mask, clip_range, **kwargs):
        calls.append(dict(kwargs, old_logprobs=old_logprobs, mask=mask))
        return loss(logprobs, old_logprobs, advantages, mask, clip_range, **kwargs)

    monkeypatch.setattr(grpo, "grpo_policy_loss", spy)
    grpo.train_grpo(policy, reference, tok, world.prompt_set("ppo_train", 4),
                    dataclasses.replace(ONE_UPDATE, kl_in=kl_in), reward_model=reward_model)
    [call] = calls
    assert call["kl_coef"] == passed
    # the reference's log-probs are the frozen copy's: before any update the policy is the reference, so they equal
    # the policy's own (k3 = 0 at the first step)
    torch.testing.assert_close(call["ref_logprobs"] * call["mask"], call["old_logprobs"] * call["mask"])


@pytest.mark.parametrize("normalization, length_normalize", [("answer_length", True), ("max_tokens", False)])
def test_the_loss_normalisation_is_its_own_setting(tok, actors, monkeypatch, normalization, length_normalize):
    """The advantage the loop uses (here one passed in, as notebook 07 does) no longer picks the loss's averaging."""
    policy, reference, reward_model = actors
    calls, loss = [], grpo.grpo_policy_loss

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return loss(*args, **kwargs)

    monkeypatch.setattr(grpo, "grpo_policy_loss", spy)
    config = dataclasses.replace(ONE_UPDATE, advantage="dr_grpo", loss_normalization=normalization)
    grpo.train_grpo(policy, reference, tok, world.prompt_set("ppo_train", 4), config, reward_model=reward_model,
                    advantage_fn=grpo.rloo_advantages)
    assert [call["length_normalize"] for call in calls] == [length_normalize]


def test_bad_settings_name_the_setting():
    for field, value in [("group_size", 1), ("advantage", "ppo"), ("loss_normalization", "tokens"), ("kl_in", "value"),
                         ("lr", float("nan")), ("minibatch_size", 3)]:
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


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_grpo_samples_as_many_answers_as_ppo_in_every_profile(profile):
    """Notebook 07 compares GRPO with PPO at the same number of sampled answers, and asserts it."""
    ppo_config, grpo_config = PROFILES[profile].ppo, PROFILES[profile].grpo
    grpo_config.validate()
    assert (grpo_config.iterations * grpo_config.answers_per_iteration
            == ppo_config.iterations * ppo_config.prompts_per_iteration)
