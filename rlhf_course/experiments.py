"""The experiments of notebook 05 (the limits of RLHF), cached because each trains several models.

Each experiment is a function of the profile that returns plain numbers and stores them as JSON under
`runs/<profile>/cache/<name>.json`. `cached(name, compute)` recomputes only when the file is missing, was
computed from another `sft` checkpoint or other candidates, or when asked (`recompute=True`, or the
environment variable `RLHF_RECOMPUTE=1`). Their PPO runs use `experiment_ppo`: notebook 04's settings with
one minibatch of rollouts per iteration, half the work of an iteration of notebook 04.

- `overoptimisation`: PPO with a weak KL penalty for many iterations against a reward model trained on
  few labels; proxy reward and gold score along the way, against KL from SFT (Gao et al. 2022).
- `biased_annotators`: reward models trained on labels from a length-biased and a position-biased
  annotator, PPO against each, and what the policy learned.
- `label_budget`: reward-model accuracy as the number of preference pairs and the annotator noise vary,
  and PPO's gold gain at the corners of that grid.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import statistics
import time
from pathlib import Path

import torch

from . import evaluation, feedback, models, ppo, reward, world
from .config import Profile

CANDIDATES_FILE = "candidates.json"  # notebook 03's SFT answers to train prompts, K per prompt


def cache_dir(profile_name: str) -> Path:
    return models.runs_dir(profile_name) / "cache"


def experiment_inputs(profile_name: str) -> dict:
    """What every experiment is computed from: the `sft` checkpoint and notebook 03's candidate answers."""
    candidates = cache_dir(profile_name) / CANDIDATES_FILE
    return {"sft": models.read_meta("sft", profile_name).get("created"),
            "candidates": candidates.stat().st_mtime if candidates.exists() else None}


def cached(profile_name: str, name: str, compute, recompute: bool = False) -> dict:
    """`compute()` once; afterwards its JSON result from `runs/<profile>/cache/<name>.json`, as long as it was
    computed from the same `sft` checkpoint and candidates (re-running notebook 02 or 03 makes it stale)."""
    path = cache_dir(profile_name) / f"{name}.json"
    inputs = experiment_inputs(profile_name)
    if path.exists() and not recompute and os.environ.get("RLHF_RECOMPUTE") != "1":
        result = json.loads(path.read_text())
        if result.get("inputs") == inputs:
            print(f"{name}: loaded from {path} (computed in {result.get('wall_s', '?')} s; pass recompute=True "
                  "to redo)")
            return result
        print(f"{name}: the cached result was computed from an older sft checkpoint or candidates; recomputing")
    start = time.perf_counter()
    result = compute()
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["inputs"] = inputs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"{name}: computed in {result['wall_s']} s, saved to {path}")
    return result


def save_candidates(profile_name: str, items: list[dict]) -> Path:
    path = cache_dir(profile_name) / CANDIDATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    return path


def load_candidates(profile_name: str) -> list[dict]:
    path = cache_dir(profile_name) / CANDIDATES_FILE
    if not path.exists():
        raise models.CheckpointError(
            f"No reward-model candidates at {path}: run notebooks/03_reward_model.ipynb first, "
            f"or `python -m rlhf_course run --profile {profile_name} --until 03`.")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------
# Building blocks: a reward model from an annotator's labels, PPO against a reward model
# --------------------------------------------------------------------------------------------------


def rank_pairs(annotator, items: list[dict]) -> list[dict]:
    """All preference pairs implied by `annotator`'s rankings of `items` (no files: an experiment's labels)."""
    pairs = []
    for item in items:
        ranking = annotator.rank(item["prompt"], item["answers"])
        for chosen, rejected in feedback.ranking_to_pairs(item["answers"], ranking):
            pairs.append({"prompt": item["prompt"], "chosen": item["answers"][chosen],
                          "rejected": item["answers"][rejected]})
    return pairs


def heldout_accuracy(rewards: list[float], heldout: dict) -> float:
    """Pairwise accuracy against the gold judge of `rewards` of the held-out SFT answers (all pairs of a
    prompt's answers whose gold scores differ by at least 0.05, as in notebook 03)."""
    a, b = heldout["pairs"]
    return reward.pairwise_accuracy([rewards[i] for i in a], [rewards[j] for j in b],
                                    [heldout["gold"][i] for i in a], [heldout["gold"][j] for j in b])[0]


def reward_length_correlation(rewards: list[float], heldout: dict) -> float:
    """Pearson correlation of `rewards` of the held-out SFT answers with their length in words."""
    import numpy as np

    return float(np.corrcoef(rewards, [len(a.split()) for a in heldout["answers"]])[0, 1])


def heldout_pairs(profile: Profile, n_prompts: int = 200, per_prompt: int = 4, seed: int = 17) -> dict:
    """`per_prompt` SFT answers to each of `n_prompts` test prompts, with their gold scores, and the index
    pairs `(a, b)` of every two answers to the same prompt. Flat lists: prompt i's answers are rows
    i·per_prompt … (i+1)·per_prompt − 1."""
    from .generation import sample_answers

    sft_model, tok, _ = models.load_checkpoint("sft", profile.name)
    prompts = [p for p in world.make_prompts(n_prompts, "test", seed=seed) for _ in range(per_prompt)]
    answers = sample_answers(sft_model, tok, prompts, profile.sampling.max_new_tokens, seed=seed,
                             batch_size=profile.sampling.batch_size, progress=False).texts
    pairs = [(g + i, g + j) for g in range(0, len(prompts), per_prompt)
             for i in range(per_prompt) for j in range(i + 1, per_prompt)]
    return {"prompts": prompts, "answers": answers, "gold": [world.gold_score(p, x) for p, x in zip(prompts, answers)],
            "pairs": tuple(zip(*pairs))}


def train_reward_on(profile: Profile, pairs: list[dict], items: list[dict], seed: int = 0):
    """A normalised reward model trained from `sft` on `pairs` (normalised on the SFT answers of `items`)."""
    _, tok, _ = models.load_checkpoint("sft", profile.name, device="cpu")
    torch.manual_seed(seed)
    reward_model = reward.init_reward_model(models.checkpoint_dir("sft", profile.name), tok).to(models.get_device())
    reward.train_reward_model(reward_model, tok, pairs, dataclasses.replace(profile.reward, epochs=1.0), seed=seed)
    answers = [(it["prompt"], a) for it in items[:250] for a in it["answers"]]
    reward.set_normalization(reward_model, reward.score_texts(
        reward_model, tok, [p for p, _ in answers], [a for _, a in answers], normalized=False))
    return reward_model, tok


def run_ppo(profile: Profile, reward_model, config, eval_prompts: list[str], seed: int = 0) -> dict:
    """PPO from `sft` against `reward_model`; the trajectory (KL, proxy, gold) and the final evaluation."""
    policy, tok, _ = models.load_checkpoint("sft", profile.name)
    reference, _, _ = models.load_checkpoint("sft", profile.name)
    value_model = copy.deepcopy(reward_model)  # the critic starts as the reward model

    def evaluate_gold(model):
        result = evaluation.evaluate(model, tok, profile.sampling, prompts=eval_prompts, reference=reference)
        proxy = statistics.fmean(reward.score_texts(reward_model, tok, result.answers.prompts, result.answers.texts))
        return result.gold_mean, {"kl": statistics.fmean(result.answers.kl), "proxy": proxy, "answers": [],
                                  "gold": [], "mean_length": statistics.fmean(result.answers.lengths)}

    train_prompts = world.make_prompts(config.train_prompt_pool, "train", seed=21)
    state = ppo.train_ppo(policy, reference, reward_model, value_model, tok, train_prompts, config,
                          evaluate_gold=evaluate_gold, seed=seed)
    trajectory = [{"iteration": s["iteration"], "kl": s["kl"], "proxy": s["proxy"],
                   "gold": r["gold"], "mean_length": s["mean_length"]}
                  for s, r in zip(state.samples, [h for h in state.history if "gold" in h])]
    return {"trajectory": trajectory, "final": trajectory[-1]}


def experiment_ppo(profile: Profile, iterations: int, eval_every: int | None = None, **changes):
    """Notebook 04's PPO settings made lighter for an experiment: one minibatch of rollouts per iteration
    (half the sampling and half the updates of an iteration of notebook 04), `iterations` of them."""
    return dataclasses.replace(profile.ppo, iterations=iterations, prompts_per_iteration=profile.ppo.minibatch_size,
                               eval_every=eval_every or iterations, **changes)


# --------------------------------------------------------------------------------------------------
# The experiments
# --------------------------------------------------------------------------------------------------


def overoptimisation(profile: Profile) -> dict:
    """Gao et al. (2022) in miniature: a proxy reward model trained on few labels, PPO with a weak KL
    penalty for many iterations; proxy reward and gold along the way, against KL from SFT."""
    items = load_candidates(profile.name)
    rng = random.Random(0)
    few = rng.sample(items, max(40, len(items) // 8))
    pairs = rank_pairs(feedback.GoldAnnotator(temperature=0.1, seed=3), few)
    reward_model, _ = train_reward_on(profile, pairs, items)
    config = experiment_ppo(profile, max(9, profile.ppo.iterations * 3 // 4), eval_every=3,
                            kl_coef=profile.ppo.kl_coef / 10, lr=profile.ppo.lr * 2)
    eval_prompts = world.make_prompts(profile.ppo.eval_prompts, "test", seed=11)
    result = run_ppo(profile, reward_model, config, eval_prompts)
    return {"n_pairs": len(pairs), "kl_coef": config.kl_coef, "iterations": config.iterations, **result}


def biased_annotators(profile: Profile) -> dict:
    """Reward models trained on biased labels, PPO against each: is the bias carried into the policy?

    The same answers (half of notebook 03's candidates) are ranked by an unbiased gold annotator, a
    length-biased one and a position-biased one; each ranking set trains a reward model, and PPO (half
    of notebook 04's iterations) runs against each.
    """
    items = load_candidates(profile.name)[: profile.reward.candidate_prompts // 2]
    eval_prompts = world.make_prompts(profile.ppo.eval_prompts, "test", seed=11)
    heldout = cached(profile.name, "heldout_answers", lambda: heldout_pairs(profile))
    config = experiment_ppo(profile, max(4, profile.ppo.iterations // 2))
    results = {}
    for annotator in (feedback.GoldAnnotator(temperature=profile.reward.annotator_temperature, seed=5),
                      feedback.LengthBiasedAnnotator(bias=1.0, temperature=profile.reward.annotator_temperature, seed=5),
                      feedback.PositionBiasedAnnotator(bias=0.3, temperature=profile.reward.annotator_temperature,
                                                       seed=5)):
        reward_model, tok = train_reward_on(profile, rank_pairs(annotator, items), items)
        run = run_ppo(profile, reward_model, config, eval_prompts)
        rewards = reward.score_texts(reward_model, tok, heldout["prompts"], heldout["answers"])
        results[annotator.name] = {"heldout_accuracy": heldout_accuracy(rewards, heldout),
                                   "reward_length_correlation": reward_length_correlation(rewards, heldout),
                                   "trajectory": run["trajectory"], **run["final"]}
    return {"annotators": results, "iterations": config.iterations, "prompts_ranked": len(items)}


def label_budget(profile: Profile, fractions=(0.1, 0.3, 1.0), temperatures=(0.02, 0.1, 0.3)) -> dict:
    """Reward-model accuracy over a grid of label counts × annotator noise, and PPO's gold gain with the
    fewest, noisiest labels (compare `biased_annotators`' unbiased run: more labels, the default noise)."""
    items = load_candidates(profile.name)[: profile.reward.candidate_prompts // 4]
    heldout = cached(profile.name, "heldout_answers", lambda: heldout_pairs(profile))
    eval_prompts = world.make_prompts(profile.ppo.eval_prompts, "test", seed=11)
    config = experiment_ppo(profile, max(4, profile.ppo.iterations // 4))
    grid = []
    for fraction in fractions:
        subset = items[: max(10, int(len(items) * fraction))]
        for temperature in temperatures:
            pairs = rank_pairs(feedback.GoldAnnotator(temperature=temperature, seed=9), subset)
            reward_model, tok = train_reward_on(profile, pairs, items)
            cell = {"fraction": fraction, "n_pairs": len(pairs), "temperature": temperature,
                    "noise_p_wrong_at_0.1": round(1 - feedback.preference_probability(0.1, temperature), 3),
                    "heldout_accuracy": heldout_accuracy(
                        reward.score_texts(reward_model, tok, heldout["prompts"], heldout["answers"]), heldout)}
            if (fraction, temperature) == (fractions[0], temperatures[-1]):  # the fewest, noisiest labels
                run = run_ppo(profile, reward_model, config, eval_prompts)
                cell["ppo_gold"] = run["final"]["gold"]
            grid.append(cell)
    sft_model, tok, _ = models.load_checkpoint("sft", profile.name)
    sft_gold = evaluation.evaluate(sft_model, tok, profile.sampling, prompts=eval_prompts).gold_mean
    return {"grid": grid, "sft_gold": sft_gold, "ppo_iterations": config.iterations}
