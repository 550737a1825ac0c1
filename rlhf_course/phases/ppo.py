"""Phase 3: PPO against the reward model, with a KL penalty to the SFT model (notebook 04).

The policy samples answers, the frozen reward model scores them, PPO updates the policy; repeat. The loop
`train_ppo` samples (step 1) and hands the rollout to `ppo_update` (steps 2–10); both read top to bottom, each
step numbered where it happens, following "The N+ Implementation Details of RLHF with PPO" (Huang et al. 2024).
The book's page "PPO implementation details"
(`book/ppo_details.md`) explains each step under the same number, with its sources:

 1. rollout: plain sampling at a temperature from left-padded prompts; stop at EOS, pad after it
 2. log-probs of the rollout under the policy and the frozen reference, from logits / temperature
 3. reward-model score read at the last real token (EOS when the answer ended), normalised on SFT answers
 4. missing-EOS penalty: answers that never end lose `missing_eos_penalty`
 5. per-token KL penalty in the reward: r_t = −β·(log π(a_t) − log π_ref(a_t)), plus the score at the end
 6. values from a separate critic initialised from the reward model
 7. GAE (γ = 1, λ = 0.95) over answer tokens; returns = advantages + values
 8. advantage whitening over the batch's answer tokens
 9. several epochs of shuffled minibatches; clipped policy loss and clipped value loss
10. in the first minibatch the probability ratio is exactly 1 (asserted): rollout and training agree

Deliberate simplifications: no reward whitening, no adaptive KL controller, no entropy bonus.

Under torchrun (`engine/distributed.py`) each rank samples and scores its share of the prompts; the rollout is
then gathered, so that the whitening and the minibatches are the global batch's, and DDP averages the gradients.
"""

from __future__ import annotations

import random
import time

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.config import PPOConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.generation import Rollout, answer_logprobs, encode_prompts, sample
from rlhf_course.engine.rl import (
    RLState,
    check_ratio_is_one,
    finish_iteration,
    masked_mean,
    mean_over_minibatches,
    stop_if_not_finite,
    update_stats,
)
from rlhf_course.engine.sampling import position_ids_from_mask
from rlhf_course.engine.training import make_optimizer, set_lr
from rlhf_course.phases.reward import normalize, reward_scores

# --------------------------------------------------------------------------------------------------
# The pure functions of PPO. Shapes: [batch, time] = (B, T); `mask` is 1 on answer tokens.
# (What GRPO shares with PPO, `masked_mean` and the k3 KL among it, is in `engine/rl.py`.)
# --------------------------------------------------------------------------------------------------


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / std over the masked entries; masked-out entries become 0."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + eps) * mask


def kl_penalty_rewards(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards r_t = −β·(log π(a_t) − log π_ref(a_t)), plus the score on the last answer token.

    (Ziegler et al. 2019, eq. 2; Stiennon et al. 2020, eq. 1.) Returns (rewards, kl), both (B, T); kl is
    the k1 estimate log π − log π_ref per token, 0 outside the answer. scores: (B,).
    """
    kl = (logprobs - ref_logprobs) * mask  # (B, T)
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)  # (B,) index of the last answer token (EOS if it ended)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards, kl


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16).

    δ_t = r_t + γ·V_{t+1} − V_t,   A_t = Σ_l (γλ)^l δ_{t+l},   returns R_t = A_t + V_t.
    Rewards and values outside the answer (`mask` 0) count as 0, so whatever a caller leaves there (padding,
    a value head's output after EOS) never reaches an advantage. rewards, values, mask: (B, T).
    Returns (advantages, returns).
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    T = rewards.shape[1]
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def ppo_policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
    clip_range: float,
) -> torch.Tensor:
    """Clipped surrogate objective (Schulman et al. 2017, eq. 7), as a loss to minimise.

    ρ_t = exp(log π(a_t) − log π_old(a_t)),  L = mean_t max(−A_t·ρ_t, −A_t·clip(ρ_t, 1 − ε, 1 + ε)).
    All inputs (B, T); the mean is over answer tokens.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    return masked_mean(torch.maximum(unclipped, clipped), mask)


def ppo_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> torch.Tensor:
    """Clipped value loss (Huang et al. 2024, detail 11): ½·mean_t max((V − R)², (V_clip − R)²).

    V_clip = V_old + clip(V − V_old, −ε, ε) keeps the critic from moving far on one batch. Inputs (B, T).
    """
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


# --------------------------------------------------------------------------------------------------
# Model calls
# --------------------------------------------------------------------------------------------------


def token_values(value_model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 prompt_len: int) -> torch.Tensor:
    """The critic's value of the state before each answer token: (B, T), aligned with the log-probs."""
    hidden = value_model.base_model(  # the transformer under the score head, whatever the architecture calls it
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask)
    ).last_hidden_state  # (B, P + T, D)
    return value_model.score(hidden[:, prompt_len - 1 : -1]).squeeze(-1).float()  # (B, T)


class Critic(torch.nn.Module):
    """`token_values` as a module's forward, so that `distributed.wrap` can put the call the value loss goes through
    inside `DistributedDataParallel` (DDP averages the gradients of what runs in its forward)."""

    def __init__(self, value_model: PreTrainedModel):
        super().__init__()
        self.value_model = value_model

    @property
    def device(self) -> torch.device:
        return self.value_model.device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int) -> torch.Tensor:
        return token_values(self.value_model, input_ids, attention_mask, prompt_len)


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def train_ppo(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    reward_model: PreTrainedModel,
    value_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_prompts: list[str],
    config: PPOConfig,
    evaluate_gold=None,
    on_iteration=None,
    seed: int = 0,
) -> RLState:
    """Optimise `policy` against `reward_model` with PPO. `evaluate_gold(policy) -> (gold_mean, samples)` is
    called every `config.eval_every` iterations; `on_iteration(state)` after every iteration. A NaN/inf loss
    stops the run with `NonFiniteLossError` and puts the policy's weights from before PPO back.

    Under torchrun every rank draws the same prompts and samples answers for its share of them, with generator seed
    `seed + rank` (so the answers differ from one process's, by design); `ppo_update` then takes the same step as
    one process would on the global rollout. Only rank 0 evaluates and calls `on_iteration`."""
    config.validate()
    if not train_prompts:
        raise ValueError("no training prompts: PPO needs prompts to sample answers for")
    distributed.check_global_batch(config.prompts_per_iteration, len(train_prompts), "PPO's prompts per iteration")
    distributed.check_global_batch(config.minibatch_size, config.prompts_per_iteration, "PPO's minibatch")
    device = policy.device
    max_prompt = policy.config.max_position_embeddings - config.max_new_tokens
    encode_prompts(tokenizer, train_prompts, max_prompt)  # fail now on a prompt too long for the context
    for frozen in (reference, reward_model):
        frozen.eval().requires_grad_(False)
    policy_optimizer = make_optimizer(policy.parameters(), config.lr, eps=1e-5)
    value_optimizer = make_optimizer(value_model.parameters(), config.value_lr, eps=1e-5)
    generator = torch.Generator(device=device).manual_seed(seed + distributed.rank())  # each rank its own answers
    rng = random.Random(seed)  # the same on every rank: the same prompts and minibatches everywhere
    trained_policy, critic = distributed.wrap(policy), distributed.wrap(Critic(value_model))  # DDP under torchrun
    state = RLState()
    weights_before = {k: v.detach().clone() for k, v in policy.state_dict().items()}  # put back on a NaN loss
    start = time.perf_counter()

    for iteration in range(config.iterations):
        # Learning rates anneal linearly to 0 (book: PPO implementation details, E).
        for optimizer, lr in ((policy_optimizer, config.lr), (value_optimizer, config.value_lr)):
            set_lr(optimizer, lr * (1 - iteration / config.iterations))

        # 1. rollout (this rank's share of the prompts: all of them in one process)
        policy.eval()
        value_model.eval()
        prompts = rng.sample(train_prompts, config.prompts_per_iteration)
        prompt_ids, prompt_mask = (distributed.shard(t) for t in encode_prompts(tokenizer, prompts, max_prompt))
        rollout: Rollout = sample(policy, prompt_ids, prompt_mask, config.max_new_tokens, config.temperature,
                                  tokenizer.eos_token_id, tokenizer.pad_token_id, generator)
        update = ppo_update(policy, reference, reward_model, value_model, rollout, config,
                            (policy_optimizer, value_optimizer), rng, weights_before, iteration, trained_policy, critic)
        record = {"iteration": iteration + 1, "elapsed_s": round(time.perf_counter() - start, 2), **update}
        finish_iteration(state, record, policy, evaluate_gold, on_iteration, config.eval_every, config.iterations)
    return state


def ppo_update(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    reward_model: PreTrainedModel,
    value_model: PreTrainedModel,
    rollout: Rollout,
    config: PPOConfig,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    rng: random.Random,
    weights_before: dict[str, torch.Tensor],
    iteration: int = 0,
    trained_policy: torch.nn.Module | None = None,
    critic: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Steps 2–10 of one PPO iteration on a sampled `rollout`: score it, then the epochs of minibatch updates of
    `policy` and `value_model` (with `optimizers`, the policy's and the critic's). Returns the iteration's numbers.

    Under torchrun `rollout` is this rank's share of the global rollout (every rank's prompts equally long, P);
    `rng` and `optimizers` are in the same state on every rank. `trained_policy` and `critic` are the modules the
    losses go through, `distributed.wrap(policy)` and `distributed.wrap(Critic(value_model))` by default."""
    policy_optimizer, value_optimizer = optimizers
    trained_policy = distributed.wrap(policy) if trained_policy is None else trained_policy
    critic = distributed.wrap(Critic(value_model)) if critic is None else critic
    input_ids, attention_mask = rollout.input_ids, rollout.attention_mask
    mask = rollout.response_mask.float()  # (B, T)
    P = rollout.prompt_ids.shape[1]
    with torch.no_grad():
        # 2. log-probs under the policy (recomputed with the training forward pass) and the reference
        old_logprobs = answer_logprobs(policy, input_ids, attention_mask, P, config.temperature) * mask
        ref_logprobs = answer_logprobs(reference, input_ids, attention_mask, P, config.temperature) * mask
        sampling_mismatch = distributed.all_reduce_max((old_logprobs - rollout.logprobs).abs().max()).item()
        # 3. reward-model score at the last real token, normalised so SFT answers have mean 0, std 1
        raw_scores = normalize(reward_scores(reward_model, input_ids, attention_mask), reward_model)
        # 4. missing-EOS penalty
        scores = raw_scores - config.missing_eos_penalty * (~rollout.ended).float()
        # 5. per-token KL penalty plus the score on the last token
        rewards, kl = kl_penalty_rewards(old_logprobs, ref_logprobs, scores, mask, config.kl_coef)
        # 6. values from the critic
        old_values = token_values(value_model, input_ids, attention_mask, P) * mask
        # 7. GAE
        advantages, returns = compute_gae(rewards, old_values, mask, config.gamma, config.gae_lambda)
        # Under torchrun every rank now takes the whole rollout (its rows and the others'): the whitening's mean
        # and variance are the global batch's, and every rank can take its share of the same global minibatches.
        input_ids, attention_mask, mask, old_logprobs, old_values, advantages, returns, raw_scores, scores, kl, \
            lengths, ended = (distributed.all_gather_rows(t) for t in (
                input_ids, attention_mask, mask, old_logprobs, old_values, advantages, returns, raw_scores, scores,
                kl, rollout.lengths, rollout.ended))
        # 8. whiten the advantages
        advantages = masked_whiten(advantages, mask)

    # 9. PPO epochs over shuffled minibatches
    policy.train()
    value_model.train()
    stats = []  # one dict per minibatch update
    for epoch in range(config.epochs):
        order = torch.randperm(len(mask), generator=torch.Generator().manual_seed(rng.randrange(2**31)))
        for first in range(0, len(mask), config.minibatch_size):
            rows = distributed.shard(order[first : first + config.minibatch_size].to(mask.device))  # this rank's
            ids, att, m = input_ids[rows], attention_mask[rows], mask[rows]
            logprobs, entropy = answer_logprobs(trained_policy, ids, att, P, config.temperature, with_entropy=True)
            log_ratio = (logprobs - old_logprobs[rows]) * m
            if epoch == 0 and first == 0:
                check_ratio_is_one(log_ratio, "PPO")  # 10. nothing has changed yet: the ratio must be 1
            # token means over the whole minibatch's answer tokens, however the processes share them
            policy_loss = distributed.global_mean(
                ppo_policy_loss(logprobs, old_logprobs[rows], advantages[rows], m, config.clip_range), m.sum())
            values = critic(ids, att, P)
            value_loss = distributed.global_mean(
                ppo_value_loss(values, old_values[rows], returns[rows], m, config.value_clip_range), m.sum())
            losses = {"policy_loss": distributed.all_reduce_mean(policy_loss.detach()),  # the global means
                      "value_loss": distributed.all_reduce_mean(value_loss.detach())}
            stop_if_not_finite({"the PPO policy loss": losses["policy_loss"], "the PPO value loss":
                                losses["value_loss"]}, iteration, policy, weights_before, "PPO")
            for optimizer, loss, model in ((policy_optimizer, policy_loss, policy),
                                           (value_optimizer, value_loss, value_model)):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # under torchrun DDP averages the gradients here: every rank takes the same step
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
            with torch.no_grad():
                stats.append({  # each a mean over the whole minibatch's answer tokens
                    **{key: distributed.logged_mean(value, m.sum())
                       for key, value in update_stats(log_ratio, entropy, m, config.clip_range).items()},
                    **losses,
                    "value_clip_fraction": distributed.logged_mean(masked_mean(
                        ((values - old_values[rows]).abs() > config.value_clip_range).float(), m), m.sum()),
                })
    policy.eval()
    value_model.eval()

    explained = 1 - masked_mean((returns - old_values) ** 2, mask) / masked_mean(
        (returns - masked_mean(returns, mask)) ** 2, mask).clamp(min=1e-8)
    return {
        "reward": raw_scores.mean().item(),  # reward-model score, before the EOS penalty
        "score": scores.mean().item(),  # after the missing-EOS penalty
        "kl": kl.sum(1).mean().item(),  # KL(π‖π_ref) per answer, nats
        "mean_length": lengths.float().mean().item(),
        "ended_fraction": ended.float().mean().item(),
        "explained_variance": explained.item(),
        "sampling_mismatch": sampling_mismatch,
        **mean_over_minibatches(stats),
    }
