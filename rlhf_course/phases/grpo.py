"""Phase 3b: RL without a critic (notebook 07). K answers per prompt; each answer's advantage is its reward
relative to its group's.

PPO (notebook 04) trains a value model to say how good a state is. RLOO and GRPO drop the critic: for every prompt
they sample a group of K answers, and the other answers of the group are the baseline. The advantage functions take
one scalar reward per answer as a `(prompts, K)` tensor.

- `rloo_advantages`: REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al. 2024).
- `grpo_advantages`: group-relative, (r − mean) / std (Shao et al. 2024).
- `dr_grpo_advantages`: r − mean, without the std (Dr. GRPO, Liu et al. 2025).
`ADVANTAGES` names them for `GRPOConfig.advantage`. How the loss averages over tokens is a setting of its own,
`GRPOConfig.loss_normalization` (`LOSS_NORMALIZATIONS`): GRPO's mean over each answer's tokens, or Dr. GRPO's
constant B · max_tokens.

The loop `train_grpo` (step 1, then `grpo_update`: steps 2–6) reads top to bottom like `ppo.train_ppo` and shares
its pieces (the sampler, the one log-prob function, the reward model's normalised score, a missing-EOS penalty of
its own size; from `engine/rl.py` the k3 KL, the masked mean, the ratio check, the update statistics, the NaN guard
and the state a dashboard draws):

 1. rollout: each prompt repeated K times, plain sampling at a temperature; stop at EOS
 2. log-probs of the rollout under the policy and the frozen reference
 3. one reward per answer: the reward model's normalised score and/or a verifier's, minus the missing-EOS penalty
 4. KL to the reference: in the reward (β·log π/π_ref off each answer, as PPO) or in the loss (GRPO's k3)
 5. group advantages: every answer against the other answers to its prompt, one number per answer
 6. epochs of shuffled minibatches of whole groups; the clipped loss; in the first, the ratio is exactly 1

Under torchrun (`engine/distributed.py`) each rank samples and scores whole groups, its share of the prompts; the
rollout is then gathered, so that every rank takes its share of the same global minibatches, and DDP averages the
gradients.
"""

from __future__ import annotations

import math
import random
import time

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.config import GRPOConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.generation import Rollout, answer_logprobs, encode_prompts, sample
from rlhf_course.engine.rl import (
    RLState,
    check_ratio_is_one,
    finish_iteration,
    k3_kl,
    mean_over_minibatches,
    stop_if_not_finite,
    update_stats,
)
from rlhf_course.engine.training import make_optimizer, set_lr
from rlhf_course.phases.reward import normalize, reward_scores
from rlhf_course.world.verifier import Verifier, check_verifiable, verifier_scores


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


def dr_grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """A_i = r_i − mean(r) within each group (Dr. GRPO, Liu et al. 2025): GRPO's advantage without the
    division by the std. rewards (P, K) → (P, K)."""
    return grpo_advantages(rewards, normalize_std=False)


# `GRPOConfig.advantage` names one of these: rewards (P, K) → advantages (P, K)
ADVANTAGES = {"grpo": grpo_advantages, "dr_grpo": dr_grpo_advantages, "rloo": rloo_advantages}


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
        per_token = per_token + kl_coef * k3_kl(ref_logprobs - logprobs)  # KL(π ‖ π_ref), d = log π_ref − log π
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


# `GRPOConfig.loss_normalization` names one of these: whether `grpo_policy_loss` averages each answer's tokens
# (GRPO: a short answer's tokens weigh more) or divides every token by the same B · max_tokens (Dr. GRPO)
LOSS_NORMALIZATIONS = {"answer_length": True, "max_tokens": False}  # name → `length_normalize`


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def train_grpo(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_prompts: list[str],
    config: GRPOConfig,
    reward_model: PreTrainedModel | None = None,
    verifier: Verifier | None = None,
    evaluate_gold=None,
    on_iteration=None,
    seed: int = 0,
    advantage_fn=None,
) -> RLState:
    """Optimise `policy` with group-relative advantages against `reward_model`, `verifier`, or both (their
    rewards add, the verifier's times `config.verifier_weight`). `verifier(prompt, answer) -> number`.
    `evaluate_gold(policy) -> (gold_mean, samples)` runs every `config.eval_every` iterations; `on_iteration(state)`
    after each. Bad settings, prompts the verifier cannot check, or a verifier that returns a non-number stop
    before training; a NaN/inf loss stops the run and puts the policy's weights from before back.
    `advantage_fn(rewards (P, K)) -> (P, K)` replaces `config.advantage` (notebook 07 passes the one you wrote);
    the loss's normalisation is `config.loss_normalization` either way.

    Under torchrun every rank draws the same prompts and samples answers for its share of them (whole groups), with
    generator seed `seed + rank` (so the answers differ from one process's, by design); `grpo_update` then takes the
    same step as one process would on the global rollout. Only rank 0 evaluates and calls `on_iteration`."""
    config.validate()
    if reward_model is None and verifier is None:
        raise ValueError("train_grpo needs a reward: pass reward_model, verifier, or both")
    if not train_prompts:
        raise ValueError("no training prompts: GRPO needs prompts to sample answers for")
    if config.prompts_per_iteration > len(train_prompts):
        raise ValueError(f"GRPOConfig.prompts_per_iteration ({config.prompts_per_iteration}) is more than the "
                         f"{len(train_prompts)} training prompts")
    # under torchrun each process takes whole groups: the prompts of an iteration split evenly, as the minibatches
    distributed.check_global_batch(config.prompts_per_iteration, len(train_prompts), "GRPO's prompts per iteration")
    distributed.check_global_batch(config.minibatch_size, config.answers_per_iteration, "GRPO's minibatch")
    device = policy.device
    max_prompt = policy.config.max_position_embeddings - config.max_new_tokens
    encode_prompts(tokenizer, train_prompts, max_prompt)  # fail now on a prompt too long for the context
    if verifier is not None:
        check_verifiable(train_prompts)
        verifier_scores(verifier, train_prompts[:1], [""])  # fail now on a verifier that returns no number
    for frozen in [reference] + ([reward_model] if reward_model is not None else []):
        frozen.eval().requires_grad_(False)
    optimizer = make_optimizer(policy.parameters(), config.lr, eps=1e-5)
    generator = torch.Generator(device=device).manual_seed(seed + distributed.rank())  # each rank its own answers
    rng = random.Random(seed)  # the same on every rank: the same prompts and minibatches everywhere
    trained_policy = distributed.wrap(policy)  # DDP under torchrun
    K = config.group_size
    state = RLState()
    weights_before = {k: v.detach().clone() for k, v in policy.state_dict().items()}  # put back on a NaN loss
    start = time.perf_counter()

    for iteration in range(config.iterations):
        set_lr(optimizer, config.lr * (1 - iteration / config.iterations))  # linear to 0, as PPO

        # 1. rollout: every prompt K times, side by side, so answer i of prompt p is row p·K + i
        policy.eval()
        group_prompts = rng.sample(train_prompts, config.prompts_per_iteration)
        prompts = [prompt for prompt in group_prompts for _ in range(K)]
        prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, max_prompt)
        # under torchrun this rank's share: whole groups (the prompts split evenly), padded as long as every rank's
        prompt_ids, prompt_mask, prompts = (distributed.shard(x) for x in (prompt_ids, prompt_mask, prompts))
        rollout: Rollout = sample(policy, prompt_ids, prompt_mask, config.max_new_tokens, config.temperature,
                                  tokenizer.eos_token_id, tokenizer.pad_token_id, generator)
        update = grpo_update(policy, reference, tokenizer, rollout, prompts, config, optimizer, rng, weights_before,
                             iteration, reward_model, verifier, advantage_fn, trained_policy)
        record = {"iteration": iteration + 1, "elapsed_s": round(time.perf_counter() - start, 2), **update}
        finish_iteration(state, record, policy, evaluate_gold, on_iteration, config.eval_every, config.iterations)
    return state


def grpo_update(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rollout: Rollout,
    prompts: list[str],
    config: GRPOConfig,
    optimizer: torch.optim.Optimizer,
    rng: random.Random,
    weights_before: dict[str, torch.Tensor],
    iteration: int = 0,
    reward_model: PreTrainedModel | None = None,
    verifier: Verifier | None = None,
    advantage_fn=None,
    trained_policy: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Steps 2–6 of one GRPO iteration on a sampled `rollout` of whole groups (`prompts`: one per answer, each
    prompt K times in a row): rewards, group advantages, then the epochs of minibatch updates of `policy`.
    Returns the iteration's numbers.

    Under torchrun `rollout` and `prompts` are this rank's whole groups of the global rollout (every rank's prompts
    equally long); `rng` and `optimizer` are in the same state on every rank. `trained_policy` is the module the
    loss goes through, `distributed.wrap(policy)` by default."""
    trained_policy = distributed.wrap(policy) if trained_policy is None else trained_policy
    advantage_fn = advantage_fn or ADVANTAGES[config.advantage]
    length_normalize = LOSS_NORMALIZATIONS[config.loss_normalization]
    K = config.group_size
    device = policy.device
    input_ids, attention_mask = rollout.input_ids, rollout.attention_mask
    mask = rollout.response_mask.float()  # (B, T), B = prompts · K
    P = rollout.prompt_ids.shape[1]
    with torch.no_grad():
        # 2. log-probs under the policy (the training forward pass) and the frozen reference
        old_logprobs = answer_logprobs(policy, input_ids, attention_mask, P, config.temperature) * mask
        ref_logprobs = answer_logprobs(reference, input_ids, attention_mask, P, config.temperature) * mask
        kl = ((old_logprobs - ref_logprobs) * mask).sum(1)  # (B,) log π(y)/π_ref(y), nats per answer
        # 3. one reward per answer (the logged means: over every process's answers, as many on each)
        rewards = torch.zeros(len(prompts), device=device)
        parts = {}
        if reward_model is not None:
            model_scores = normalize(reward_scores(reward_model, input_ids, attention_mask), reward_model)
            rewards += model_scores
            parts["reward_model"] = distributed.all_reduce_mean(model_scores.mean()).item()
        if verifier is not None:
            verified = verifier_scores(verifier, prompts, rollout.texts(tokenizer)).to(device)
            rewards += config.verifier_weight * verified
            parts["verifier"] = distributed.all_reduce_mean(verified.mean()).item()
        optimised = distributed.all_reduce_mean(rewards.mean()).item()  # what the policy is pushed up, before penalties
        rewards -= config.missing_eos_penalty * (~rollout.ended).float()
        # 4. the KL penalty in the reward (as PPO does, one number per answer), or later in the loss
        if config.kl_in == "reward":
            rewards -= config.kl_coef * kl
        # 5. advantages relative to the group: (P, K) → one number per answer, (B,) (a group is on one rank)
        grouped = check_group_rewards(rewards.view(-1, K))
        advantages = advantage_fn(grouped).reshape(-1)
        # Under torchrun every rank now takes the whole rollout (its rows and the others'), so that every rank can
        # take its share of the same global minibatches.
        input_ids, attention_mask, mask, old_logprobs, ref_logprobs, advantages, rewards, kl, grouped, lengths, \
            ended = (distributed.all_gather_rows(t) for t in (
                input_ids, attention_mask, mask, old_logprobs, ref_logprobs, advantages, rewards, kl, grouped,
                rollout.lengths, rollout.ended))

    # 6. epochs over shuffled minibatches of whole groups
    policy.train()
    stats = []  # one dict per minibatch update
    groups_per_minibatch = config.minibatch_size // K
    for epoch in range(config.epochs):
        order = torch.randperm(config.prompts_per_iteration,
                               generator=torch.Generator().manual_seed(rng.randrange(2**31)))
        for first in range(0, config.prompts_per_iteration, groups_per_minibatch):
            groups = order[first : first + groups_per_minibatch]
            rows = distributed.shard((groups[:, None] * K + torch.arange(K)).reshape(-1).to(device))  # this rank's
            ids, att, m = input_ids[rows], attention_mask[rows], mask[rows]
            logprobs, entropy = answer_logprobs(trained_policy, ids, att, P, config.temperature, with_entropy=True)
            log_ratio = (logprobs - old_logprobs[rows]) * m
            if epoch == 0 and first == 0:
                check_ratio_is_one(log_ratio, "GRPO")  # nothing has changed yet: rollout and training agree
            loss = grpo_policy_loss(
                logprobs, old_logprobs[rows], advantages[rows], m, config.clip_range,
                ref_logprobs=ref_logprobs[rows], kl_coef=config.kl_coef if config.kl_in == "loss" else 0.0,
                length_normalize=length_normalize, max_tokens=config.max_new_tokens)
            loss = distributed.global_mean(loss, len(rows))  # a mean over the whole minibatch's answers
            logged_loss = distributed.all_reduce_mean(loss.detach())
            stop_if_not_finite({"the GRPO loss": logged_loss}, iteration, policy, weights_before, "GRPO")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under torchrun DDP averages the gradients here: every rank takes the same step
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats.append({**{key: distributed.logged_mean(value, m.sum())  # over the minibatch's tokens
                                 for key, value in update_stats(log_ratio, entropy, m, config.clip_range).items()},
                              "loss": logged_loss})
    policy.eval()

    return {
        "reward": optimised,  # the reward model's normalised score, plus the verifier's (weighted)
        **parts,
        "score": rewards.mean().item(),  # after the missing-EOS penalty (and the KL, when it is in the reward)
        "kl": kl.mean().item(),
        "mean_length": lengths.float().mean().item(),
        "ended_fraction": ended.float().mean().item(),
        # groups whose answers all got the same reward teach nothing: their advantages are 0
        "flat_groups": (grouped.max(1).values - grouped.min(1).values < 1e-6).float().mean().item(),
        **mean_over_minibatches(stats),
    }
