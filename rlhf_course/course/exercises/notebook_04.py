"""The exercises of notebook 04 (PPO): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import torch

from rlhf_course.course.exercises.cases import generator
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.engine import rl
from rlhf_course.phases import ppo


def _ppo_tensors(seed: int):
    g = generator(seed)
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    logprobs = -torch.rand(3, 5, generator=g) * mask
    ref_logprobs = -torch.rand(3, 5, generator=g) * mask
    return logprobs, ref_logprobs, mask, g


def _kl_cases():
    cases = []
    for seed in (0, 1):
        _, _, mask, g = _ppo_tensors(seed)
        # log-probs after the answer's end are whatever the caller left there: they must not count
        logprobs, ref = -torch.rand(3, 5, generator=g), -torch.rand(3, 5, generator=g)
        cases.append((logprobs, ref, torch.randn(3, generator=g), mask, 0.1 if seed == 0 else 0.3))
    return cases


def _last_index(mask):
    return mask.sum(1).long() - 1


exercise(
    id="04.1", notebook="04_ppo", title="the per-token reward with its KL penalty",
    task="return (rewards, kl): kl = (logprobs − ref_logprobs)·mask per token; rewards = −kl_coef·kl, plus each "
         "answer's score added on its last answer token (index mask.sum(1) − 1)",
    reference=ppo.kl_penalty_rewards,
    cases=_kl_cases,
    outputs=("rewards", "kl"),
    mistakes={
        "The score goes on the last answer token (mask.sum(1) − 1), not the first.":
            lambda lp, ref, s, m, b: (lambda kl: (torch.cat([(-b * kl)[:, :1] + s[:, None], (-b * kl)[:, 1:]], 1),
                                                  kl))((lp - ref) * m),
        "The KL's sign is flipped: tokens the policy made more likely than the reference pay the penalty "
        "(log π − log π_ref).":
            lambda lp, ref, s, m, b: (lambda kl: ((b * kl).index_put((torch.arange(3), _last_index(m)), s,
                                                                     accumulate=True), -kl))((lp - ref) * m),
        "The KL is not masked: positions after the answer's end must get no penalty.":
            lambda lp, ref, s, m, b: (lambda kl: ((-b * kl).index_put((torch.arange(3), _last_index(m)), s,
                                                                      accumulate=True), kl))(lp - ref),
    },
)


def _gae_cases():
    cases = []
    for seed, (gamma, lam) in zip((0, 1, 2), ((1.0, 0.95), (0.9, 0.8), (1.0, 1.0))):
        _, _, mask, g = _ppo_tensors(seed)
        cases.append((torch.randn(3, 5, generator=g) * mask, torch.randn(3, 5, generator=g) * mask, mask, gamma, lam))
    # rewards and values not zeroed after the answer's end: they must count as 0 (no bootstrap from past the end)
    _, _, mask, g = _ppo_tensors(3)
    cases.append((torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), mask, 0.9, 0.95))
    return cases


def _gae_without(bootstrap: bool = True, lam_in_recursion: bool = True, backwards: bool = True,
                 next_value_is_current: bool = False, gamma_in_recursion: bool = True):
    """GAE with one typical mistake: no bootstrap value, γ instead of γλ, λ instead of γλ, the value of this
    token where the next one's belongs, or the recursion run forwards."""
    def gae(rewards, values, mask, gamma, lam):
        advantages, running = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
        steps = range(rewards.shape[1])
        for t in reversed(steps) if backwards else steps:
            next_value = values[:, t + 1] if t + 1 < rewards.shape[1] and bootstrap else torch.zeros_like(running)
            if next_value_is_current:
                next_value = values[:, t]
            delta = rewards[:, t] + gamma * next_value - values[:, t]
            decay = (gamma if gamma_in_recursion else 1.0) * (lam if lam_in_recursion else 1.0)
            running = delta + decay * running
            advantages[:, t] = running
        return advantages * mask, (advantages * mask + values) * mask
    return gae


exercise(
    id="04.2", notebook="04_ppo", title="generalised advantage estimation",
    task="return (advantages, returns): backwards over t, δ_t = r_t + γ·V_{t+1} − V_t (V after the last column "
         "is 0) and A_t = δ_t + γλ·A_{t+1}; rewards and values outside the mask count as 0, advantages are masked, "
         "returns = (A + V)·mask",
    reference=ppo.compute_gae,
    cases=_gae_cases,
    mistakes={
        "No bootstrap: δ_t needs the next state's value, r_t + γ·V_{t+1} − V_t.": _gae_without(bootstrap=False),
        "The recursion needs γλ: A_t = δ_t + γλ·A_{t+1} (with only γ it is the Monte-Carlo return, λ = 1).":
            _gae_without(lam_in_recursion=False),
        "The recursion runs backwards, from the last token to the first: A_t depends on A_{t+1}.":
            _gae_without(backwards=False),
        "δ_t needs the value of the next token, V_{t+1} (values[:, t + 1]), not of this one.":
            _gae_without(next_value_is_current=True),
        "The recursion needs γλ, not λ alone: A_t = δ_t + γλ·A_{t+1} (the two agree only when γ = 1).":
            _gae_without(gamma_in_recursion=False),
    },
    outputs=("advantages", "returns"),
)


def _whiten_cases():
    cases = []
    for seed in (0, 1):
        _, _, mask, g = _ppo_tensors(seed)
        cases.append((torch.randn(3, 5, generator=g) * 2 + 1, mask))
    return cases


exercise(
    id="04.3", notebook="04_ppo", title="whitening the advantages",
    task="return (x − mean)/√(var + 1e-8) where mean and variance are taken over the masked entries only, and "
         "masked-out entries are 0 in the result",
    reference=ppo.masked_whiten,
    cases=_whiten_cases,
    mistakes={
        "The mean and variance must come from the masked entries only, not from the padding too.":
            lambda x, m: (x - x.mean()) * torch.rsqrt(x.var(unbiased=False) + 1e-8) * m,
        "Masked-out entries must be 0 in the result (multiply by the mask at the end).":
            lambda x, m: (x - rl.masked_mean(x, m)) * torch.rsqrt(rl.masked_mean((x - rl.masked_mean(x, m)) ** 2,
                                                                                  m) + 1e-8),
        "Divide by the standard deviation (the square root of the variance), not by the variance.":
            lambda x, m: (x - rl.masked_mean(x, m)) / (rl.masked_mean((x - rl.masked_mean(x, m)) ** 2, m) + 1e-8)
            * m,
    },
)


def _policy_loss_cases():
    cases = []
    for seed in (0, 1):
        logprobs, old, mask, g = _ppo_tensors(seed)
        cases.append((logprobs, old, torch.randn(3, 5, generator=g), mask, 0.2 if seed == 0 else 0.1))
    return cases


exercise(
    id="04.4", notebook="04_ppo", title="the clipped policy loss",
    task="with ρ = exp(logprobs − old_logprobs), return the masked mean over answer tokens of "
         "max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε))",
    reference=ppo.ppo_policy_loss,
    cases=_policy_loss_cases,
    mistakes={
        "No clipping: PPO limits how far one update can move ρ, clip(ρ, 1 − ε, 1 + ε).":
            lambda lp, old, a, m, e: rl.masked_mean(-a * torch.exp(lp - old), m),
        "min instead of max: as a loss to minimise, PPO takes the pessimistic (larger) of the two terms.":
            lambda lp, old, a, m, e: rl.masked_mean(torch.minimum(-a * torch.exp(lp - old), -a * torch.clamp(
                torch.exp(lp - old), 1 - e, 1 + e)), m),
        "The mean must be over answer tokens only (the mask), not over the padding too.":
            lambda lp, old, a, m, e: torch.maximum(-a * torch.exp(lp - old),
                                                   -a * torch.clamp(torch.exp(lp - old), 1 - e, 1 + e)).mean(),
    },
)


def _value_loss_cases():
    cases = []
    for seed in (2, 3):
        _, _, mask, g = _ppo_tensors(seed)
        old = torch.randn(3, 5, generator=g)
        cases.append((old + 0.5 * torch.randn(3, 5, generator=g), old, torch.randn(3, 5, generator=g), mask,
                      0.2 if seed == 2 else 0.3))
    return cases


exercise(
    id="04.5", notebook="04_ppo", title="the clipped value loss",
    task="with V_clip = old_values + clip(values − old_values, −ε, ε), return ½ · the masked mean of "
         "max((V − R)², (V_clip − R)²)",
    reference=ppo.ppo_value_loss,
    cases=_value_loss_cases,
    mistakes={
        "No clipping: the value may move at most ε from its old value, V_clip = V_old + clip(V − V_old, −ε, ε).":
            lambda v, old, r, m, e: 0.5 * rl.masked_mean((v - r) ** 2, m),
        "min instead of max: the clipped value loss takes the larger of the two squared errors.":
            lambda v, old, r, m, e: 0.5 * rl.masked_mean(torch.minimum(
                (v - r) ** 2, (old + torch.clamp(v - old, -e, e) - r) ** 2), m),
        "The factor ½ is missing.":
            lambda v, old, r, m, e: rl.masked_mean(torch.maximum(
                (v - r) ** 2, (old + torch.clamp(v - old, -e, e) - r) ** 2), m),
    },
)
