"""The experiments of notebook 05 (the limits of RLHF), cached because each trains several models.

Each experiment is a function of the profile and of settings the notebook passes (and prints); it returns plain
numbers, stored as JSON under `runs/<profile>/cache/<name>.json`. `cached(name, compute, settings=...)`
recomputes only when the file is missing, was computed from another `sft` checkpoint, other notebook-03
artifacts (`artifacts`: the candidates and the held-out answers) or other settings, or when asked
(`recompute=True`, or the environment variable `RLHF_RECOMPUTE=1`). Their PPO runs use a lighter version of
notebook 04's settings that the notebook makes with `experiment_ppo`.

- `overoptimisation`: best-of-n against a reward model trained on few labels; proxy reward and gold score as n
  grows, against the KL of best-of-n from SFT (Gao et al. 2022).
- `biased_annotators`: reward models trained on labels from a length-biased and a happy-biased
  annotator, PPO against each, and what the policy learned.
- `label_budget`: reward-model accuracy as the number of preference pairs and the annotator noise vary,
  and PPO's gold gain at the fewest, noisiest and the most, cleanest labels.
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

from rlhf_course import world
from rlhf_course.config import PPOConfig, Profile
from rlhf_course.course import artifacts
from rlhf_course.engine import models
from rlhf_course.feedback import annotators, rankings
from rlhf_course.phases import evaluation, ppo, reward

VERSION = 8  # raise when an experiment changes, so results cached by older code are recomputed


def cache_dir(profile_name: str) -> Path:
    return models.runs_dir(profile_name) / "cache"


def experiment_inputs(profile_name: str, settings: dict | None = None) -> dict:
    """What an experiment is computed from: the `sft` checkpoint, notebook 03's artifacts, its settings."""
    return {"version": VERSION, "sft": models.read_meta("sft", profile_name).get("created"),
            "artifacts": artifacts.fingerprint(profile_name), "settings": settings or {}}


def _fresh(path: Path, profile_name: str, settings: dict | None = None) -> dict | None:
    """The JSON at `path` if it was computed from the current `sft` checkpoint, artifacts and settings."""
    if path.exists():
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("inputs") == experiment_inputs(profile_name, settings):
            return result
    return None


def cached(profile_name: str, name: str, compute, recompute: bool = False, settings: dict | None = None) -> dict:
    """`compute()` once; afterwards its JSON result from `runs/<profile>/cache/<name>.json`, as long as it was
    computed from the same `sft` checkpoint, notebook-03 artifacts and `settings` (re-running notebook 02 or 03,
    or changing a setting, makes it stale)."""
    path = cache_dir(profile_name) / f"{name}.json"
    # as JSON stores them: tuples become lists, a PPOConfig its fields
    settings = json.loads(json.dumps(settings or {}, default=dataclasses.asdict))
    if not recompute and os.environ.get("RLHF_RECOMPUTE") != "1":
        if (result := _fresh(path, profile_name, settings)) is not None:
            print(f"{name}: loaded from {path} (computed in {result.get('wall_s', '?')} s; pass recompute=True "
                  "to redo)")
            return result
        if path.exists():
            print(f"{name}: the cached result was computed from an older sft checkpoint, other candidates or "
                  "other settings; recomputing")
    start = time.perf_counter()
    result = compute()
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["inputs"] = experiment_inputs(profile_name, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"{name}: computed in {result['wall_s']} s, saved to {path}")
    return result


def stages(total: int, name: str):
    """A progress bar over an experiment's reward models and PPO runs."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="model")


# --------------------------------------------------------------------------------------------------
# Building blocks: a reward model from an annotator's labels, PPO against a reward model
# --------------------------------------------------------------------------------------------------


def rank_pairs(annotator, items: list[dict]) -> list[dict]:
    """All preference pairs implied by `annotator`'s rankings of `items` (no files: an experiment's labels)."""
    pairs = []
    for item in items:
        ranking = annotator.rank(item["prompt"], item["answers"])
        for chosen, rejected in rankings.ranking_to_pairs(item["answers"], ranking):
            pairs.append({"prompt": item["prompt"], "chosen": item["answers"][chosen],
                          "rejected": item["answers"][rejected]})
    return pairs


def heldout_accuracy(rewards: list[float], heldout: dict) -> tuple[float, int]:
    """Pairwise accuracy against the gold judge of `rewards` of the held-out SFT answers (all pairs of a
    prompt's answers whose gold scores differ by at least 0.05) and the number of pairs counted."""
    a, b = heldout["pairs"]
    return reward.pairwise_accuracy([rewards[i] for i in a], [rewards[j] for j in b],
                                    [heldout["gold"][i] for i in a], [heldout["gold"][j] for j in b])


def reward_length_correlation(rewards: list[float], heldout: dict) -> float:
    """Pearson correlation of `rewards` of the held-out SFT answers with their length in tokens."""
    import numpy as np

    return float(np.corrcoef(rewards, heldout["lengths"])[0, 1])


def mood_share(prompts: list[str], answers: list[str], mood: str) -> float:
    """Share of the answers to prompts asking for another mood that show `mood`'s words anyway."""
    other = [(p, a) for p, a in zip(prompts, answers)
             if (asked := world.parse_request(p).mood) is not None and asked != mood]
    return statistics.fmean(mood in world.moods_shown(a) for _, a in other)


def train_reward_on(profile: Profile, pairs: list[dict], normalize_on: list[dict] | None = None,
                    epochs: float = 1.0):
    """A reward model trained from `sft` on `pairs` for `epochs` passes, at the course seed; normalised on the SFT
    answers of `normalize_on` (candidate items) when given (PPO needs that; accuracy and correlations do not)."""
    _, tok, _ = models.load_checkpoint("sft", profile.name, device="cpu")
    seed = profile.seed
    torch.manual_seed(seed)
    reward_model = reward.init_reward_model(models.checkpoint_dir("sft", profile.name), tok).to(models.get_device())
    reward.train_reward_model(reward_model, tok, pairs, dataclasses.replace(profile.reward, epochs=epochs), seed=seed,
                              progress=False)
    if normalize_on:
        answers = [(it["prompt"], a) for it in normalize_on for a in it["answers"]]
        reward.set_normalization(reward_model, reward.score_texts(
            reward_model, tok, [p for p, _ in answers], [a for _, a in answers], normalized=False))
    return reward_model, tok


def sft_evaluation(profile: Profile, eval_prompts: list[str]) -> dict:
    """What the experiments' PPO runs start from: SFT's gold, length and answers on `eval_prompts`."""
    sft_model, tok, _ = models.load_checkpoint("sft", profile.name)
    result = evaluation.evaluate(sft_model, tok, profile.sampling, prompts=eval_prompts)
    return {"gold": result.gold_mean, "mean_length": statistics.fmean(result.answers.lengths),
            "answers": result.answers.texts}


def run_ppo(profile: Profile, reward_model, config, eval_prompts: list[str], seed: int | None = None) -> dict:
    """PPO from `sft` against `reward_model` (at the course seed unless `seed` is given), measured on
    `eval_prompts` at the end: KL from SFT, proxy reward, gold, length. Returns `{"final": {..., "answers": [...]}}`."""
    policy, tok, _ = models.load_checkpoint("sft", profile.name)
    reference, _, _ = models.load_checkpoint("sft", profile.name)
    # the critic starts as the reward model (trainable again: train_ppo freezes the reward model it is given)
    value_model = copy.deepcopy(reward_model).requires_grad_(True)
    train_prompts = world.prompt_set("ppo_train", config.train_prompt_pool)
    ppo.train_ppo(policy, reference, reward_model, value_model, tok, train_prompts, config,
                  seed=profile.seed if seed is None else seed)
    result = evaluation.evaluate(policy, tok, profile.sampling, prompts=eval_prompts, reference=reference)
    return {"final": {"iteration": config.iterations, "kl": statistics.fmean(result.answers.kl),
                      "gold": result.gold_mean,
                      "proxy": statistics.fmean(reward.score_texts(reward_model, tok, eval_prompts,
                                                                   result.answers.texts)),
                      "mean_length": statistics.fmean(result.answers.lengths), "answers": result.answers.texts}}


def experiment_ppo(profile: Profile, iterations: int, **changes) -> PPOConfig:
    """Notebook 04's PPO settings made lighter for an experiment: rollouts of half a minibatch of prompts, one
    minibatch per iteration (a quarter of the work of an iteration of notebook 04), `iterations` of them, and a
    learning rate three times notebook 04's, so that these short runs move the policy about as far from SFT.
    `changes` override any setting. Notebook 05 makes and prints these; the experiments take them as arguments."""
    batch = max(1, profile.ppo.minibatch_size // 2)
    settings = {"lr": profile.ppo.lr * 3, **changes}
    return dataclasses.replace(profile.ppo, iterations=iterations, prompts_per_iteration=batch, minibatch_size=batch,
                               eval_every=iterations, **settings)


# --------------------------------------------------------------------------------------------------
# The experiments
# --------------------------------------------------------------------------------------------------


def best_of_n_curve(proxy: list[float], gold: list[float], samples_per_prompt: int, ns) -> list[dict]:
    """Gold and proxy score of the best-of-n pick by `proxy` for each n in `ns`, averaged over prompts (flat lists,
    `samples_per_prompt` answers a prompt), with best-of-n's KL from the sampler."""
    curve = []
    for n in ns:
        picks = [(evaluation.best_of_n_mean(proxy[r : r + samples_per_prompt], gold[r : r + samples_per_prompt], n),
                  evaluation.best_of_n_mean(proxy[r : r + samples_per_prompt], proxy[r : r + samples_per_prompt], n))
                 for r in range(0, len(proxy), samples_per_prompt)]
        curve.append({"n": n, "kl": round(evaluation.best_of_n_kl(n), 4),
                      "gold": round(statistics.fmean(g for g, _ in picks), 4),
                      "proxy": round(statistics.fmean(p for _, p in picks), 4)})
    return curve


def overoptimisation(profile: Profile, ns=(1, 2, 4, 8, 16, 32, 64), samples_per_prompt: int = 64,
                     proxy_prompts: int = 20, proxies: int = 3) -> dict:
    """Gao et al. (2022) in miniature, with best-of-n: a proxy reward model trained on very few noisy labels picks
    the best of n SFT answers; the proxy's and the gold judge's score of the pick as n grows, against the
    analytic KL log n − (n − 1)/n. Beside it, the same best-of-n with notebook 03's reward model (5,000 pairs).
    Best-of-n needs no training, so each curve carries only the sampling noise of `samples_per_prompt` answers
    to each of notebook 04's evaluation prompts, averaged over every n of them (`evaluation.best_of_n_mean`).
    `proxies` weak reward models, each on the rankings of its own `proxy_prompts` prompts, pick from the same
    answers; `weak_proxy` is their mean curve, `weak_proxies` each one's (Gao et al. average over proxies too)."""
    from rlhf_course.engine.generation import sample_answers

    items = artifacts.load_candidates(profile.name)
    progress = stages(proxies + 2, "over-optimisation")
    prompts = world.prompt_set("ppo_eval", profile.ppo.eval_prompts)
    sft_model, tok, _ = models.load_checkpoint("sft", profile.name)
    flat = [p for p in prompts for _ in range(samples_per_prompt)]
    answers = sample_answers(sft_model, tok, flat, profile.sampling.max_new_tokens, seed=profile.sampling.seed,
                             batch_size=profile.sampling.batch_size * 2, progress=False)
    gold = [world.gold_score(p, a) for p, a in zip(flat, answers.texts)]
    progress.update()
    # Each proxy ranks `proxy_prompts` prompts (20: 120 pairs). With more labels the proxy is better and gold falls
    # later and less: one sft model, three proxies each, gold fell 0.03-0.13 past its peak on 372 pairs and
    # 0.06-0.17 on 120. One proxy's curve depends on which 20 prompts it saw (an earlier, 7-run robustness sweep's
    # worst run fell 0.030, its median 0.12); the mean of three is steadier.
    draw = random.Random(profile.seed)
    weak_curves, n_pairs = [], 0
    for index in range(proxies):
        few = draw.sample(items, proxy_prompts)
        pairs = rank_pairs(annotators.GoldAnnotator(temperature=0.1, seed=profile.seed + 3 + 100 * index), few)
        n_pairs += len(pairs)
        proxy_model, _ = train_reward_on(profile, pairs, normalize_on=items[:100])
        weak = reward.score_texts(proxy_model, tok, flat, answers.texts)
        weak_curves.append(best_of_n_curve(weak, gold, samples_per_prompt, ns))
        progress.update()
    reward_model, _, _ = models.load_reward_model(profile.name)
    full = reward.score_texts(reward_model, tok, flat, answers.texts)
    progress.update()
    progress.close()
    mean_curve = [{"n": points[0]["n"], "kl": points[0]["kl"],
                   "gold": round(statistics.fmean(p["gold"] for p in points), 4),
                   "proxy": round(statistics.fmean(p["proxy"] for p in points), 4)} for points in zip(*weak_curves)]
    return {"n_pairs": n_pairs, "prompts": len(prompts), "samples_per_prompt": samples_per_prompt,
            "weak_proxy": mean_curve, "weak_proxies": weak_curves,
            "reward_model": best_of_n_curve(full, gold, samples_per_prompt, ns)}


def best_of_k_habits(heldout: dict, rewards: list[float], n: int | None = None) -> dict:
    """Mean length (tokens) and happy share (of answers to prompts that asked for another mood) of the answer a
    best-of-n by `rewards` picks among each prompt's held-out SFT answers (n = all K of them by default; n = 1 is
    SFT itself)."""
    K = len(heldout["prompts"]) // len(set(heldout["prompts"]))
    groups = range(0, len(heldout["prompts"]), K)
    happy = [float("happy" in world.moods_shown(a)) for a in heldout["answers"]]
    other_mood = [g for g in groups if world.parse_request(heldout["prompts"][g]).mood not in (None, "happy")]

    def pick(values: list[float], g: int) -> float:
        return evaluation.best_of_n_mean(rewards[g : g + K], values[g : g + K], n or K)

    return {"n": n or K, "mean_length": statistics.fmean(pick(heldout["lengths"], g) for g in groups),
            "happy_share": statistics.fmean(pick(happy, g) for g in other_mood)}


def biased_annotators(profile: Profile, ppo_config: PPOConfig, prompts_ranked: int) -> dict:
    """Reward models trained on biased labels, PPO against each: is the bias carried into the policy?

    The same answers (half of notebook 03's candidates) are ranked by one annotator that likes long answers
    and one that likes cheerful stories whatever mood was asked for; each ranking set trains a reward model
    (compare notebook 03's, trained on unbiased labels). PPO runs against each, and the answers are compared
    with SFT's on the same prompts: length, and the share of answers to sad, scary or funny prompts that
    turned happy. Beside PPO, best-of-K with each reward model on notebook 03's held-out SFT answers (K per
    prompt, 200 prompts): the same pull of the annotator's taste without the noise of a short PPO run.
    `prompts_ranked`: how many of notebook 03's candidate items the biased annotators rank; `ppo_config`: the
    PPO runs' settings (see `experiment_ppo`).
    """
    items = artifacts.load_candidates(profile.name)[:prompts_ranked]
    heldout = artifacts.load_heldout_answers(profile.name)
    eval_prompts = world.prompt_set("ppo_eval", profile.ppo.eval_prompts)
    sft = sft_evaluation(profile, eval_prompts)
    temperature = profile.reward.annotator_temperature
    biased = [annotators.LengthBiasedAnnotator(bias=1.0, temperature=temperature, seed=profile.seed + 5),
              annotators.MoodBiasedAnnotator(mood="happy", bias=0.3, temperature=temperature, seed=profile.seed + 5)]
    results = {}
    progress = stages(len(biased) * 2, "biased annotators")
    for annotator in biased:
        reward_model, tok = train_reward_on(profile, rank_pairs(annotator, items), normalize_on=items[:100])
        progress.update()
        rewards = reward.score_texts(reward_model, tok, heldout["prompts"], heldout["answers"])
        run = run_ppo(profile, reward_model, ppo_config, eval_prompts)
        answers = run["final"].pop("answers")
        results[annotator.name] = {"heldout_accuracy": heldout_accuracy(rewards, heldout)[0],
                                   "reward_length_correlation": reward_length_correlation(rewards, heldout),
                                   **run["final"],
                                   "happy_share": mood_share(eval_prompts, answers, "happy"),
                                   "best_of_k": best_of_k_habits(heldout, rewards)}
        progress.update()
    progress.close()
    return {"sft": {"gold": sft["gold"], "mean_length": sft["mean_length"],
                    "happy_share": mood_share(eval_prompts, sft["answers"], "happy"),
                    "best_of_k": best_of_k_habits(heldout, [0.0] * len(heldout["answers"]), n=1)},
            "annotators": results, "iterations": ppo_config.iterations,
            "prompts_per_iteration": ppo_config.prompts_per_iteration, "prompts_ranked": len(items)}


def label_budget(profile: Profile, ppo_config: PPOConfig, prompts_ranked: int, fractions=(0.1, 0.3, 1.0),
                 temperatures=(0.02, 0.2), epochs: float = 2.0) -> dict:
    """Reward-model accuracy over a grid of label counts (`fractions` of `prompts_ranked` candidate items) ×
    annotator noise (`temperatures`), each cell trained for `epochs` passes over its pairs, and PPO's gold gain
    (`ppo_config`) at two corners of the grid: the fewest, noisiest labels and the most, cleanest ones."""
    items = artifacts.load_candidates(profile.name)[:prompts_ranked]
    # Two passes, not one: after a single pass the largest cell (900 pairs, 28 steps) was still half trained and
    # on one stream of an earlier robustness sweep scored below the smallest (0.61 vs 0.67); two passes let many clean
    # labels train a good model and let few noisy ones overfit their noise, which is the lesson.
    # All held-out prompts (about 1,000 pairs counted): with half of them one cell moved by ±0.04 between
    # trainings that differed only in warm-up.
    heldout = artifacts.load_heldout_answers(profile.name)
    eval_prompts = world.prompt_set("ppo_eval", profile.ppo.eval_prompts)
    grid = []
    progress = stages(len(fractions) * len(temperatures) + 2, "label budget")
    corners = {(fractions[0], temperatures[-1]), (fractions[-1], temperatures[0])}
    for fraction in fractions:
        subset = items[: max(10, int(len(items) * fraction))]
        for temperature in temperatures:
            with_ppo = (fraction, temperature) in corners
            pairs = rank_pairs(annotators.GoldAnnotator(temperature=temperature, seed=profile.seed + 9), subset)
            reward_model, tok = train_reward_on(profile, pairs, normalize_on=items[:100] if with_ppo else None,
                                                epochs=epochs)
            rewards = reward.score_texts(reward_model, tok, heldout["prompts"], heldout["answers"])
            cell = {"fraction": fraction, "n_pairs": len(pairs), "temperature": temperature,
                    "noise_p_wrong_at_0.1": round(1 - annotators.preference_probability(0.1, temperature), 3),
                    "heldout_accuracy": heldout_accuracy(rewards, heldout)[0]}
            if with_ppo:
                cell["ppo_gold"] = run_ppo(profile, reward_model, ppo_config, eval_prompts)["final"]["gold"]
                progress.update()
            grid.append(cell)
            progress.update()
    progress.close()
    return {"grid": grid, "sft_gold": sft_evaluation(profile, eval_prompts)["gold"],
            "ppo_iterations": ppo_config.iterations}
