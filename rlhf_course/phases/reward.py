"""Phase 2: a Bradley–Terry reward model learned from preference pairs (notebook 03).

The reward model is the SFT model with its language-model head replaced by one scalar head
(`AutoModelForSequenceClassification`, one label), so other tools (TRL, OpenRLHF) can load it. Its score is
read at the last real token of prompt + answer; every training answer ends with EOS, so that is the EOS
token, the same place PPO reads it for answers that ended.

Implementation details:
1. Score head initialised N(0, 1/√(d_model + 1)) (Stiennon et al. 2020).
2. The head learns 5× faster than the backbone (`head_lr_scale`): a fresh head on a trained backbone.
3. After training the reward is normalised so that answers of `sft` score mean 0, std 1. The constants
   are stored in the checkpoint's `config.json` (`reward_mean`, `reward_std`) and `meta.json`.
4. The pairs of one ranking share a batch and each distinct answer is scored once (InstructGPT §3.5).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from rlhf_course import world
from rlhf_course.config import RewardConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.precision import training_precision
from rlhf_course.engine.preference_batches import distinct_answers, ranking_batches, scored_by_length
from rlhf_course.engine.sampling import position_ids_from_mask
from rlhf_course.engine.training import (
    backward_and_step,
    check_finite,
    cosine_lr,
    make_optimizer,
    set_lr,
)
from rlhf_course.world.tokenizer import chat_text


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Bradley–Terry negative log-likelihood of the human choice (Ouyang et al. 2022, eq. 1).

    P(chosen ≻ rejected) = σ(r_chosen − r_rejected), so
    L = −(1/B) Σ_b log σ(r_chosen,b − r_rejected,b).   chosen_rewards, rejected_rewards: (B,)
    """
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def init_reward_model(sft_folder, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A reward model: the SFT backbone with a fresh scalar head (1. initialised N(0, 1/√(d+1)))."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the SFT checkpoint has no score head by design: no "MISSING" load report
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            sft_folder, num_labels=1, use_safetensors=True, trust_remote_code=False
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    torch.nn.init.normal_(model.score.weight, std=1 / math.sqrt(model.config.hidden_size + 1))
    return model


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase, prompts: list[str], answers: list[str], max_len: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """prompt (chat template) + answer + EOS (`chat_text`) for each pair of lists, left-padded: (B, T) ids, mask."""
    texts = [chat_text(tokenizer, p, a) for p, a in zip(prompts, answers)]
    encoded = tokenizer(
        texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt", add_special_tokens=False
    )
    return encoded.input_ids, encoded.attention_mask


def reward_scores(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Raw scalar reward of each sequence, read at its last non-pad token: (B,)."""
    return model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
    ).logits.squeeze(-1).float()


def normalize(raw: torch.Tensor, model: PreTrainedModel) -> torch.Tensor:
    """(raw − mean) / std with the constants stored in the reward model's config (3.)."""
    return (raw - getattr(model.config, "reward_mean", 0.0)) / getattr(model.config, "reward_std", 1.0)


@torch.no_grad()
def score_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    answers: list[str],
    batch_size: int = 64,
    normalized: bool = True,
) -> list[float]:
    """The reward of each (prompt, answer) pair as a list of floats, in the order given (scored in batches of
    similar length, `scored_by_length`)."""

    def score(rows: list[int]) -> list[float]:
        ids, mask = encode_pairs(tokenizer, [prompts[i] for i in rows], [answers[i] for i in rows])
        raw = reward_scores(model, ids.to(model.device), mask.to(model.device))
        return (normalize(raw, model) if normalized else raw).tolist()

    return scored_by_length(prompts, answers, batch_size, score)


def train_reward_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: list[dict],
    config: RewardConfig,
    seed: int = 0,
    on_step=None,
    progress: bool = True,
    loss_fn=bradley_terry_loss,
) -> list[dict]:
    """Fit `model` to preference `pairs` (`{"prompt", "chosen", "rejected"}`); history of loss and accuracy.
    `loss_fn(chosen_rewards, rejected_rewards)`: the loss (notebook 03 passes the one written in its exercise)."""
    device = model.device
    distributed.check_global_batch(config.batch_size, len(pairs), "the reward model")
    head = [p for n, p in model.named_parameters() if n.startswith("score.")]
    backbone = [p for n, p in model.named_parameters() if not n.startswith("score.")]
    optimizer = make_optimizer(backbone, config.lr)
    optimizer.add_param_group({"params": head, "lr": config.lr * config.head_lr_scale,
                               "lr_scale": config.head_lr_scale})  # 2. a faster head
    precision = training_precision(device)  # bfloat16 or float16 autocast on a GPU, float32 on a CPU
    scaler = precision.grad_scaler()  # float16 only: scales the loss so small gradients do not vanish
    # 4. All pairs from one ranking go into the same batch, and each distinct answer is scored once: a ranking
    # of K answers gives K(K-1)/2 pairs from K forward passes instead of K(K-1) (InstructGPT, §3.5).
    total_steps, batches = ranking_batches(pairs, config.batch_size, config.epochs, seed)  # the same on every rank
    trained = distributed.wrap(model)  # under torchrun: DDP, which averages the gradients over the processes
    history = []
    model.train()
    start = time.perf_counter()
    show = progress and distributed.is_main()
    for step, batch in enumerate(tqdm(batches, total=total_steps, desc="reward model", disable=not show)):
        local = distributed.shard(batch, "a batch of pairs")  # this process's pairs of the global batch
        texts, chosen_index, rejected_index = distinct_answers(local)
        ids, mask = encode_pairs(tokenizer, [p for p, _ in texts], [a for _, a in texts], config.max_len)
        set_lr(optimizer, lr := cosine_lr(step, total_steps, config.warmup_steps, config.lr))
        with precision.autocast():
            rewards = reward_scores(trained, ids.to(device), mask.to(device))  # (distinct answers,)
        rewards = rewards.float()  # the loss in float32, whatever the forward pass ran in
        chosen, rejected = rewards[chosen_index], rewards[rejected_index]  # (pairs,)
        loss = loss_fn(chosen, rejected)
        check_finite(loss, "the reward-model loss", step)
        loss = distributed.global_mean(loss, len(local))  # a mean over all the processes' pairs
        backward_and_step(loss, optimizer, scaler, model.parameters())
        accuracy = distributed.logged_mean((chosen > rejected).float().mean(), len(local))
        record = {"step": step, "loss": distributed.all_reduce_mean(loss).item(), "accuracy": accuracy.item(),
                  "pairs": len(batch), "lr": lr, "elapsed_s": time.perf_counter() - start}
        history.append(record)
        if on_step:
            on_step(record)
    model.eval()
    return history


def set_normalization(model: PreTrainedModel, raw_scores: list[float]) -> dict[str, float]:
    """Store mean and std of raw rewards of `sft` answers in the model's config, so they score mean 0, std 1."""
    values = torch.tensor(raw_scores)
    constants = {"reward_mean": values.mean().item(), "reward_std": values.std().clamp(min=1e-6).item()}
    for key, value in constants.items():
        setattr(model.config, key, value)
    return constants


def pairwise_accuracy(rewards_a: list[float], rewards_b: list[float], gold_a: list[float], gold_b: list[float],
                      min_gold_gap: float = 0.05) -> tuple[float, int]:
    """Share of pairs where the reward orders a and b as the gold score does; pairs whose gold scores differ
    by less than `min_gold_gap` are left out. Returns (accuracy, number of pairs counted)."""
    counted = [(ra > rb) == (ga > gb) for ra, rb, ga, gb in zip(rewards_a, rewards_b, gold_a, gold_b)
               if abs(ga - gb) >= min_gold_gap]
    return (sum(counted) / len(counted) if counted else float("nan")), len(counted)


def probe_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, probes: list[dict]) -> dict[str, float]:
    """`world.probe_accuracy` of the reward model on `world.probe_pairs` rows: for each probe, how often it
    scores the clean answer above the same answer with one mistake."""
    prompts = [row["prompt"] for row in probes]
    better = score_texts(model, tokenizer, prompts, [row["better"] for row in probes], normalized=False)
    worse = score_texts(model, tokenizer, prompts, [row["worse"] for row in probes], normalized=False)
    return world.probe_accuracy(probes, better, worse)
