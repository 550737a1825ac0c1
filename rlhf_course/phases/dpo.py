"""Direct Preference Optimisation: the same preference pairs, no reward model, no RL (notebook 06).

Rafailov et al. (2023) show that the KL-regularised RLHF objective has a closed-form optimal policy, so the
Bradley–Terry model can be written in terms of the policy itself: the "implicit reward" of an answer is
β·log(π_θ(y|x) / π_ref(y|x)). Training is then a classification loss on preference pairs.

Sequence log-probs are summed over answer tokens only (the prompt is the same in both answers):
`generation.answer_logprob_sums`.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.config import DPOConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.generation import answer_logprob_sums
from rlhf_course.engine.preference_batches import distinct_answers, ranking_batches, scored_by_length
from rlhf_course.engine.training import check_finite, cosine_lr, make_optimizer, set_lr
from rlhf_course.phases.sft import collate, tokenize_demonstration


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """The DPO loss (Rafailov et al. 2023, eq. 7), averaged over the batch.

    L = −(1/B) Σ_b log σ( β·[log π_θ(y_w|x) − log π_ref(y_w|x)] − β·[log π_θ(y_l|x) − log π_ref(y_l|x)] )
    with y_w the chosen and y_l the rejected answer. All inputs are summed answer log-probs, shape (B,).
    """
    chosen_margin = policy_chosen_logps - reference_chosen_logps
    rejected_margin = policy_rejected_logps - reference_rejected_logps
    return -F.logsigmoid(beta * (chosen_margin - rejected_margin)).mean()


def train_dpo(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: list[dict],
    config: DPOConfig,
    seed: int = 0,
    on_step=None,
    loss_fn=dpo_loss,
) -> list[dict]:
    """Train `policy` with DPO on preference `pairs` (`{"prompt", "chosen", "rejected"}`); returns history with
    loss, implicit reward margin and accuracy (share of pairs whose implicit reward prefers the chosen).
    `loss_fn`: the loss, with `dpo_loss`'s arguments (notebook 06 passes the one written in its exercise)."""
    if config.beta <= 0 or math.isnan(config.beta):
        raise ValueError(f"DPO's beta must be positive, not {config.beta}")
    device = policy.device
    distributed.check_global_batch(config.batch_size, len(pairs), "DPO")
    reference.eval().requires_grad_(False)
    # The pairs of one ranking share a batch and each distinct answer goes through the models once (as for the
    # reward model, `engine/preference_batches.py`): K answers give K(K-1)/2 pairs.
    optimizer = make_optimizer(policy.parameters(), config.lr)
    total_steps, batches = ranking_batches(pairs, config.batch_size, config.epochs, seed)  # the same on every rank
    trained = distributed.wrap(policy)  # under torchrun: DDP, which averages the gradients over the processes
    history = []
    start = time.perf_counter()
    policy.train()
    for step, batch in enumerate(tqdm(batches, total=total_steps, desc="DPO", disable=not distributed.is_main())):
        local = distributed.shard(batch, "a batch of pairs")  # this process's pairs of the global batch
        texts, chosen, rejected = distinct_answers(local)
        examples = [tokenize_demonstration(tokenizer, prompt, answer) for prompt, answer in texts]
        tensors = {k: v.to(device) for k, v in collate(examples, tokenizer.pad_token_id).items()}
        set_lr(optimizer, lr := cosine_lr(step, total_steps, config.warmup_steps, config.lr))
        with torch.no_grad():
            reference_logps = answer_logprob_sums(reference, **tensors)  # (distinct answers,)
        policy_logps = answer_logprob_sums(trained, **tensors)
        loss = loss_fn(policy_logps[chosen], policy_logps[rejected], reference_logps[chosen],
                        reference_logps[rejected], config.beta)
        check_finite(loss, "the DPO loss", step)
        loss = distributed.global_mean(loss, len(local))  # a mean over all the processes' pairs
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            implicit = config.beta * (policy_logps - reference_logps)  # implicit rewards of the distinct answers
            margin = implicit[chosen] - implicit[rejected]  # (pairs,)
        record = {"step": step, "loss": distributed.all_reduce_mean(loss).item(),
                  "margin": distributed.logged_mean(margin.mean(), len(local)).item(),
                  "accuracy": distributed.logged_mean((margin > 0).float().mean(), len(local)).item(),
                  "lr": lr, "elapsed_s": time.perf_counter() - start}
        history.append(record)
        if on_step:
            on_step(record)
    policy.eval()
    return history


@torch.no_grad()
def implicit_rewards(policy: PreTrainedModel, reference: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     prompts: list[str], answers: list[str], beta: float, batch_size: int = 64) -> list[float]:
    """DPO's implicit reward β·log(π_θ(y|x) / π_ref(y|x)) of each (prompt, answer), in the order given.

    It measures how much training moved an answer's probability away from the reference, which is a judgement
    of the answer only where the preference data taught something (Lin et al. 2024)."""

    def score(rows: list[int]) -> list[float]:
        examples = [tokenize_demonstration(tokenizer, prompts[i], answers[i]) for i in rows]
        tensors = {k: v.to(policy.device) for k, v in collate(examples, tokenizer.pad_token_id).items()}
        return (beta * (answer_logprob_sums(policy, **tensors) - answer_logprob_sums(reference, **tensors))).tolist()

    return scored_by_length(prompts, answers, batch_size, score)
