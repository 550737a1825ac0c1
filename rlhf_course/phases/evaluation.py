"""Measuring what really matters: gold scores, win rates and their uncertainty.

Every phase is judged the same way: `evaluate` samples one answer to each of the same held-out test
prompts with the same settings (`SamplingConfig`, plain sampling at temperature 1, a fixed seed) and
scores it with the hidden gold preference. The decoding mode is fixed and reported rather than chosen per
model: a colder sampler scores differently (for the tiny SFT model, greedy decoding scores far higher), and
notebook 07 measures every model at other temperatures as a baseline of its own.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.config import SamplingConfig
from rlhf_course.engine.generation import Answers, sample_answers
from rlhf_course.world import GOLD_WEIGHTS, gold_breakdown, prompt_set


@dataclass
class GoldEval:
    """A model's answers to the evaluation prompts, and how the gold judge scored them."""

    answers: Answers
    breakdowns: list[dict[str, float]] = field(default_factory=list)

    @property
    def scores(self) -> list[float]:
        return [b["total"] for b in self.breakdowns]

    @property
    def gold_mean(self) -> float:
        return statistics.fmean(self.scores)

    def component_means(self) -> dict[str, float]:
        return {k: statistics.fmean(b[k] for b in self.breakdowns) for k in [*GOLD_WEIGHTS, "story"]}

    def summary(self) -> dict[str, float]:
        """The numbers every phase reports."""
        summary = {
            "gold_mean": round(self.gold_mean, 4),
            "mean_length": round(statistics.fmean(self.answers.lengths), 2),
            "ended_fraction": round(statistics.fmean(self.answers.ended), 4),
        }
        if self.answers.kl:
            summary["kl"] = round(statistics.fmean(self.answers.kl), 4)
        return summary


def eval_prompts(sampling: SamplingConfig) -> list[str]:
    """The held-out test prompts behind every phase's `gold_mean` (the same list for every phase)."""
    return prompt_set("evaluation", sampling.eval_prompts)


def score_answers(answers: Answers) -> GoldEval:
    return GoldEval(answers, [gold_breakdown(p, r) for p, r in zip(answers.prompts, answers.texts)])


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sampling: SamplingConfig,
    prompts: list[str] | None = None,
    reference: PreTrainedModel | None = None,
    reference_temperature: float | None = None,
) -> GoldEval:
    """Sample one answer per evaluation prompt with the fixed settings and score it with the gold judge.

    With a `reference` model (the SFT model), also measure KL(model ‖ reference) per answer on these samples, the
    reference at `reference_temperature` (default: the sampling temperature; temperature 0 is greedy).
    """
    answers = sample_answers(
        model,
        tokenizer,
        prompts or eval_prompts(sampling),
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        seed=sampling.seed,
        batch_size=sampling.batch_size,
        reference=reference,
        reference_temperature=reference_temperature,
    )
    return score_answers(answers)


def gold_evaluator(tokenizer: PreTrainedTokenizerBase, sampling: SamplingConfig, prompts: list[str], shown: int = 3):
    """The `evaluate_gold` an RL loop calls every few iterations (`ppo.train_ppo`, `grpo.train_grpo`):
    `evaluate_gold(model) -> (gold_mean, samples)`, the gold mean of `evaluate` on `prompts` and, for the
    dashboard's table, the first `shown` answers with their gold scores (`{"answers", "gold"}`)."""

    def evaluate_gold(model: PreTrainedModel) -> tuple[float, dict[str, list]]:
        result = evaluate(model, tokenizer, sampling, prompts=prompts)
        return result.gold_mean, {"answers": result.answers.texts[:shown], "gold": result.scores[:shown]}

    return evaluate_gold


def win_rate(scores: list[float], baseline_scores: list[float], tie_margin: float = 1e-9) -> float:
    """Share of prompts where `scores` beat `baseline_scores` (same prompts, same order); ties count half."""
    if len(scores) != len(baseline_scores) or not scores:
        raise ValueError("win_rate needs two equally long, non-empty score lists on the same prompts")
    wins = sum(1.0 if a > b + tie_margin else 0.5 if abs(a - b) <= tie_margin else 0.0
               for a, b in zip(scores, baseline_scores))
    return wins / len(scores)


def bootstrap_ci(values: list[float], n_resamples: int = 1000, level: float = 0.95, seed: int = 0):
    """Percentile bootstrap confidence interval of the mean: (low, high)."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(n_resamples))
    tail = (1 - level) / 2
    return means[int(tail * n_resamples)], means[int((1 - tail) * n_resamples) - 1]


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n ‖ the sampler) in nats: log n − (n − 1)/n (Stiennon et al. 2020, appendix G.3).

    Best-of-n draws n answers and keeps the one the reward model likes best: the cheapest RLHF there is. Its
    distance from the sampler grows only with log n (exactly this for distinct rewards; Beirami et al. 2024)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_mean(proxy: list[float], values: list[float], n: int) -> float:
    """The expected `values[i]` of the answer a best-of-n picks by `proxy`, over every n of these N samples.

    Unbiased over all C(N, n) subsets rather than one draw (Nakano et al. 2021, WebGPT appendix; Gao et al.
    2022 §2): with the samples sorted by proxy, the k-th lowest (k = 1…N) is the best of a subset with
    probability C(k − 1, n − 1) / C(N, n). Ties in the proxy are broken by position."""
    N = len(proxy)
    if len(values) != N or not 1 <= n <= N:
        raise ValueError(f"best_of_n_mean needs 1 ≤ n ≤ N equally long lists (n={n}, N={N}, {len(values)} values)")
    order = sorted(range(N), key=lambda i: (proxy[i], i))
    total = math.comb(N, n)
    return sum(math.comb(k - 1, n - 1) / total * values[i] for k, i in enumerate(order, 1) if k >= n)


def best_of_n(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward_model: PreTrainedModel,
    sampling: SamplingConfig,
    n: int,
    prompts: list[str] | None = None,
) -> tuple[GoldEval, dict[str, list[float]]]:
    """Best-of-n on the evaluation prompts: `n` answers to each, sampled with the fixed settings, and the one
    `reward_model` scores highest kept. Returns the picks scored by the gold judge, and every sample's
    `{"proxy", "gold"}` (flat, n a prompt) for the curve over smaller n (`experiments.best_of_n_curve`)."""
    from rlhf_course.phases.reward import score_texts

    prompts = prompts or eval_prompts(sampling)
    flat = [p for p in prompts for _ in range(n)]
    answers = sample_answers(model, tokenizer, flat, sampling.max_new_tokens, sampling.temperature, sampling.seed,
                             batch_size=sampling.batch_size * 2)
    proxy = score_texts(reward_model, tokenizer, flat, answers.texts)
    gold = [gold_breakdown(p, a)["total"] for p, a in zip(flat, answers.texts)]
    picks = [max(range(r, r + n), key=proxy.__getitem__) for r in range(0, len(flat), n)]
    picked = Answers(prompts, [answers.texts[i] for i in picks], [answers.lengths[i] for i in picks],
                     [answers.ended[i] for i in picks])
    return score_answers(picked), {"proxy": proxy, "gold": gold}
