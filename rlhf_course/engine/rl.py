"""What the two RL loops share: PPO (`phases/ppo.py`, notebook 04) and GRPO (`phases/grpo.py`, notebook 07).

Both sample answers from the policy, score them, and take clipped policy-gradient steps on minibatches of the
rollout. What they do alike lives here, so that the two loops compute it the same way:

- `masked_mean`: a mean over answer tokens only, the reduction of every per-token quantity
- `k3_kl`: the per-token KL estimate, GRPO's penalty in the loss and both loops' approx-KL per update
- `check_ratio_is_one`: in the first minibatch nothing has been updated, so the probability ratio must be 1
- `update_stats` and `mean_over_minibatches`: the health numbers of each update and their mean per iteration
- `stop_if_not_finite`: a NaN/inf loss restores the policy and stops the run
- `RLState`, `finish_iteration`: the history a dashboard draws, the gold score every few iterations
- `diagnose`: the failure modes a history shows, in plain language

Shapes: [batch, time] = (B, T), `mask` is 1 on answer tokens and 0 on padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel

from rlhf_course.engine import distributed
from rlhf_course.engine.training import NonFiniteLossError, check_finite


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean_t x_t over the entries where the mask is 1: Σ x·m / max(Σ m, 1) (0 for an empty mask).

    Padding never counts, however many columns of it a batch has."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def k3_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(p ‖ q) from tokens sampled from p: k3 = e^d − 1 − d = expm1(d) − d, with
    d = log q(x) − log p(x) per token (Schulman 2020, "Approximating KL divergence").

    Unbiased, never negative (e^d ≥ 1 + d), and of lower variance than k1 = −d. `expm1` keeps e^d − 1 exact for the
    small d of a policy near its reference. GRPO's penalty: p = π, q = π_ref, d = log π_ref − log π;
    approx-KL of an update: p = π_old, q = π, d = log π − log π_old. Any shape, elementwise.
    """
    return torch.expm1(log_ratio) - log_ratio


def check_ratio_is_one(log_ratio: torch.Tensor, method: str) -> None:
    """Before the first update the policy is the one that sampled, so ρ = π/π_old must be exactly 1 (up to 1e-4 in
    log): if not, sampling and training compute different log-probs, and every ratio after is wrong (book: PPO
    implementation details, step 10). `log_ratio` (B, T), 0 outside the answer."""
    largest = log_ratio.abs().max().item()
    if not largest < 1e-4:  # a NaN fails too
        raise AssertionError(f"{method} ratio is not 1 before the first update (max |log ratio| {largest:.2e}): "
                             "rollout and training log-probs disagree")


def update_stats(log_ratio: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor,
                 clip_range: float) -> dict[str, torch.Tensor]:
    """How far one minibatch update moved the policy, each a mean over answer tokens (log_ratio, entropy, mask (B, T)):

    clip_fraction = mean_t [|ρ_t − 1| > ε], approx_kl = mean_t k3(log ρ_t) (KL(π_old ‖ π), Schulman 2020),
    ratio = mean_t ρ_t, entropy = mean_t H(π(·|s_t)), with ρ_t = π(a_t)/π_old(a_t) (the dashboards' panels; book:
    PPO implementation details).
    """
    ratio = torch.exp(log_ratio)
    return {
        "clip_fraction": masked_mean(((ratio - 1).abs() > clip_range).float(), mask),
        "approx_kl": masked_mean(k3_kl(log_ratio), mask),  # never negative
        "ratio": masked_mean(ratio, mask),
        "entropy": masked_mean(entropy, mask),
    }


def mean_over_minibatches(stats: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """One number per statistic for the iteration: the mean over its minibatch updates, in the order recorded."""
    return {key: torch.stack([minibatch[key] for minibatch in stats]).mean().item() for key in stats[0]}


def stop_if_not_finite(losses: dict[str, torch.Tensor], iteration: int, policy: PreTrainedModel,
                       weights_before: dict[str, torch.Tensor], method: str) -> None:
    """A NaN/inf loss: put the policy's weights from before the run back and stop, saying what happened."""
    for what, loss in losses.items():
        try:
            check_finite(loss, what, iteration)
        except NonFiniteLossError as error:
            policy.load_state_dict(weights_before)
            raise NonFiniteLossError(f"{error} {method} stopped; the policy was restored to its weights before "
                                     f"{method}, and no checkpoint was written (the last saved one is kept).") from None


@dataclass
class RLState:
    """Everything an RL loop changes, so a notebook can inspect it and a dashboard can draw it (PPO or GRPO)."""

    history: list[dict] = field(default_factory=list)  # one record per iteration
    samples: list[dict] = field(default_factory=list)  # fixed prompts' answers over time


def finish_iteration(state: RLState, record: dict, policy: PreTrainedModel, evaluate_gold, on_iteration,
                     eval_every: int, iterations: int) -> None:
    """Add the iteration's `record` to the history, with the gold score every `eval_every` iterations and after
    the last (`evaluate_gold(policy) -> (gold_mean, samples)`), then call `on_iteration(state)`. Under torchrun
    only rank 0 evaluates and reports (a dashboard, a gold score once, not once per process)."""
    iteration = record["iteration"] - 1
    if not distributed.is_main():
        evaluate_gold = on_iteration = None
    if evaluate_gold and (iteration % eval_every == 0 or iteration == iterations - 1):
        record["gold"], samples = evaluate_gold(policy)
        state.samples.append({"iteration": iteration + 1, **samples})
    state.history.append(record)
    if on_iteration:
        on_iteration(state)


def diagnose(history: list[dict]) -> list[str]:
    """Plain-language warnings for the known failure modes visible in an RL history (one record per iteration,
    PPO's or GRPO's)."""
    if len(history) < 3:
        return []
    warnings = []
    first, recent = history[0], history[-3:]

    def mean(key: str, records=recent) -> float:
        return sum(r[key] for r in records) / len(records)

    if mean("kl") < -0.5:
        warnings.append(
            f"Mean KL to the reference is negative ({mean('kl'):.2f} nats): the answers are not sampled from the "
            "distribution the log-probs are computed for. Check the sampling settings (no top-k/top-p, the same "
            "temperature everywhere, pad ≠ EOS).")
    if abs(mean("ratio") - 1) > 0.1 or mean("approx_kl") > 0.1:
        warnings.append(
            f"The probability ratio drifts from 1 (mean {mean('ratio'):.2f}, approx-KL {mean('approx_kl'):.3f}): "
            "updates are too large. Lower the learning rate or the number of epochs.")
    if mean("entropy") < 0.25 * first["entropy"]:
        warnings.append(
            f"Entropy collapsed from {first['entropy']:.2f} to {mean('entropy'):.2f}: the policy is becoming "
            "deterministic and will stop exploring. Raise the KL coefficient or lower the learning rate.")
    if mean("mean_length") < 0.3 * first["mean_length"]:
        warnings.append(
            f"Answers are shrinking to nothing ({first['mean_length']:.0f} → {mean('mean_length'):.0f} tokens): "
            "stopping early has become the easiest way to avoid penalties. Check the reward model's length bias.")
    golds = [r for r in history if "gold" in r]
    if len(golds) >= 3:
        best = max(golds, key=lambda r: r["gold"])
        last = golds[-1]
        # Two evaluations in a row below the best by more than the noise of a 64-prompt gold mean (~0.02).
        recent_gold = (golds[-1]["gold"] + golds[-2]["gold"]) / 2
        if recent_gold < best["gold"] - 0.05 and last["reward"] > best["reward"] + 0.2:
            warnings.append(
                f"Reward hacking: the reward rose ({best['reward']:.2f} → {last['reward']:.2f}) while the gold score "
                f"fell ({best['gold']:.3f} → {last['gold']:.3f}) since iteration {best['iteration']}. The policy "
                "exploits the reward model's mistakes; a larger KL coefficient or fewer iterations would stop earlier.")
    return warnings
