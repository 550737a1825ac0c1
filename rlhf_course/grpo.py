"""Phase 3b: RL without a critic. K answers per prompt; each answer's advantage is its reward relative to its
group's (notebook 07, in progress: these are its pure functions).

PPO (notebook 04) trains a value model to say how good a state is. RLOO and GRPO drop the critic: for every prompt
they sample a group of K answers, and the other answers of the group are the baseline. All functions take one
scalar reward per answer as a `(prompts, K)` tensor.

- `rloo_advantages`: REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al. 2024).
- `grpo_advantages`: group-relative, (r − mean) / std (Shao et al. 2024); `normalize_std=False` is Dr. GRPO's
  variant (Liu et al. 2025), which also drops the per-answer length normalisation (`grpo_policy_loss`).
- `k3_kl`: the per-token KL estimate GRPO puts in the loss instead of the reward (Schulman 2020).
"""

from __future__ import annotations

import math

import torch


def check_group_rewards(rewards: torch.Tensor) -> torch.Tensor:
    """`rewards` if it is a finite `(prompts, K)` float tensor with K ≥ 2; else a `ValueError` saying what is wrong."""
    if not isinstance(rewards, torch.Tensor) or rewards.dim() != 2:
        raise ValueError(f"rewards must be a (prompts, K) tensor, one reward per answer, not {type(rewards).__name__}"
                         + (f" of shape {tuple(rewards.shape)}" if isinstance(rewards, torch.Tensor) else ""))
    if rewards.shape[1] < 2:
        raise ValueError(f"a group needs at least 2 answers per prompt (K = {rewards.shape[1]}): the other answers "
                         "are the baseline")
    if not torch.isfinite(rewards).all():
        bad = (~torch.isfinite(rewards)).nonzero()[0].tolist()
        raise ValueError(f"reward {rewards[bad[0], bad[1]].item()} for prompt {bad[0]}, answer {bad[1]}: every "
                         "reward must be a finite number (check the reward function)")
    return rewards.float()


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """A_i = r_i − (1/(K−1)) Σ_{j≠i} r_j: each answer against the mean of the others (Ahmadian et al. 2024, eq. 6).

    Leaving yourself out keeps the baseline independent of your own sample, so the gradient stays unbiased.
    Equal to K/(K−1) · (r_i − mean(r)). rewards (P, K) → advantages (P, K).
    """
    rewards = check_group_rewards(rewards)
    K = rewards.shape[1]
    others_mean = (rewards.sum(1, keepdim=True) - rewards) / (K - 1)
    return rewards - others_mean


def grpo_advantages(rewards: torch.Tensor, normalize_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """A_i = (r_i − mean(r)) / (std(r) + eps) within each group (Shao et al. 2024, §4.1.2); with
    `normalize_std=False`, A_i = r_i − mean(r) (Dr. GRPO, Liu et al. 2025: dividing by the std weights groups whose
    answers are nearly alike, too easy or too hard, the most). std is the sample standard deviation (K − 1), as in
    TRL. A group whose answers all got the same reward gets advantage 0. rewards (P, K) → (P, K).
    """
    rewards = check_group_rewards(rewards)
    centred = rewards - rewards.mean(1, keepdim=True)
    if not normalize_std:
        return centred
    return centred / (rewards.std(1, keepdim=True) + eps)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π ‖ π_ref) estimate k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1 (Schulman 2020).

    Unbiased for tokens sampled from π, never negative, and lower-variance than log π − log π_ref. (B, T).
    """
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1


def grpo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    length_normalize: bool = True,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """GRPO's clipped objective as a loss (Shao et al. 2024, eq. 3), one advantage per answer.

    Per token: ℓ_t = max(−A·ρ_t, −A·clip(ρ_t, 1 − ε, 1 + ε)) + β·k3_t, with ρ_t = π/π_old. With `length_normalize`
    (GRPO) each answer's tokens are averaged, then the answers: L = mean_i (1/|o_i|) Σ_t ℓ_t. Without it (Dr. GRPO)
    L = Σ_i Σ_t ℓ_t / (B · max_tokens), so a long answer's tokens weigh as much as a short one's.
    logprobs, old_logprobs, mask (and ref_logprobs): (B, T); advantages: (B,) for B = prompts · K answers.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    A = advantages[:, None]
    per_token = torch.maximum(-A * ratio, -A * torch.clamp(ratio, 1 - clip_range, 1 + clip_range))
    if kl_coef:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs (the reference model's log-probs of the same tokens)")
        per_token = per_token + kl_coef * k3_kl(logprobs, ref_logprobs)
    per_token = per_token * mask
    if length_normalize:
        return (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()
    return per_token.sum() / (mask.shape[0] * (max_tokens or mask.shape[1]))


def group_size_for(answers: int, prompts: int) -> int:
    """How many answers each prompt gets when `answers` are shared among `prompts` (PPO's budget, for a fair
    comparison): `answers / prompts`, which must be a whole number ≥ 2."""
    K = answers / prompts
    if K < 2 or not math.isclose(K, round(K)):
        raise ValueError(f"{answers} answers over {prompts} prompts is not a whole group of at least 2 per prompt")
    return round(K)
