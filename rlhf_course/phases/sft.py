"""Phase 1: supervised fine-tuning on demonstrations (notebook 02).

Each demonstration becomes one chat-formatted sequence, prompt then answer then EOS. The loss is the
next-token loss on the answer tokens only: the model learns to write answers, not to write prompts.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course import world
from rlhf_course.config import SFTConfig, WorldConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.generation import IGNORE_INDEX
from rlhf_course.engine.precision import training_precision
from rlhf_course.engine.training import (
    backward_and_step,
    check_finite,
    cosine_lr,
    make_optimizer,
    set_lr,
    shuffled_batches,
)
from rlhf_course.world.tokenizer import chat_prompt, chat_text


def demonstration_dataset(world_config: WorldConfig, seed: int) -> Dataset:
    """The course's demonstrations as a `Dataset` (`prompt`, `response`, `flaws`): the world's human-style
    writers' and the hand-written ones (`data/demonstrations.jsonl`), shuffled with the course `seed`."""
    rows = world.make_demonstrations(world_config.demonstrations, seed=world_config.seed)
    rows += world.load_hand_written_demonstrations()
    columns = ("prompt", "response", "flaws")
    return Dataset.from_list([{k: row[k] for k in columns} for row in rows]).shuffle(seed=seed)


def tokenize_demonstration(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str) -> dict:
    """`{"input_ids", "labels"}` of one demonstration; labels are `IGNORE_INDEX` on every prompt token."""
    prompt_ids = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False).input_ids
    full_ids = tokenizer(chat_text(tokenizer, prompt, response), add_special_tokens=False).input_ids
    return mask_prompt(prompt_ids, full_ids, prompt)


def mask_prompt(prompt_ids: list[int], full_ids: list[int], prompt: str) -> dict:
    """`{"input_ids": full_ids, "labels"}`: the labels are the ids with every prompt token set to `IGNORE_INDEX`."""
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"the chat template tokenizes the prompt differently inside the conversation: {prompt!r}")
    labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return {"input_ids": full_ids, "labels": labels}


def tokenize_demonstrations(tokenizer: PreTrainedTokenizerBase, demonstrations: Dataset, max_len: int) -> Dataset:
    """Tokenize a `Dataset` with `prompt` and `response` columns (each row as `tokenize_demonstration` does);
    drops rows over `max_len`."""

    def encode(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False, return_attention_mask=False).input_ids

    def tokenize_batch(batch: dict[str, list]) -> dict[str, list]:
        # one tokenizer call per batch, not per row: the fast tokenizer then encodes in parallel (20k rows
        # took 13 s one at a time on two CPU cores, 5.4 s in batches of 1000)
        prompt_ids = encode([chat_prompt(tokenizer, p) for p in batch["prompt"]])
        full_ids = encode([chat_text(tokenizer, p, r) for p, r in zip(batch["prompt"], batch["response"])])
        rows = [mask_prompt(prompt_row, full_row, prompt)
                for prompt_row, full_row, prompt in zip(prompt_ids, full_ids, batch["prompt"])]
        return {"input_ids": [r["input_ids"] for r in rows], "labels": [r["labels"] for r in rows]}

    tokenized = demonstrations.map(tokenize_batch, batched=True, batch_size=1000,
                                   remove_columns=demonstrations.column_names, desc="tokenizing")
    return tokenized.filter(lambda row: len(row["input_ids"]) <= max_len)


def collate(rows: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch for training: input_ids, attention_mask, labels, each (B, T)."""
    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        input_ids[i, :n] = torch.tensor(row["input_ids"])
        labels[i, :n] = torch.tensor(row["labels"])
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on answer tokens only (Ouyang et al. 2022, §3.5 "Supervised fine-tuning").

    L = −(1/N) Σ_{t: label_{t+1} ≠ ignore} log p(label_{t+1} | x_≤t), N = number of answer tokens.
    logits (B, T, V); labels (B, T) with `IGNORE_INDEX` on prompt and padding tokens.
    """
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
    )


def train_sft(
    model: PreTrainedModel,
    tokenized: Dataset,
    config: SFTConfig,
    pad_token_id: int,
    seed: int = 0,
    on_step=None,
    loss_fn=sft_loss,
) -> list[dict]:
    """Fine-tune `model` on tokenized demonstrations; returns the history `[{"step", "loss", "lr"}]`.
    `loss_fn(logits, labels)`: the loss (notebook 02 passes the one written in its exercise)."""
    device = model.device
    rows = list(tokenized)
    distributed.check_global_batch(config.batch_size, len(rows), "SFT")
    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    optimizer = make_optimizer(model.parameters(), config.lr, config.weight_decay)
    precision = training_precision(device)  # bfloat16 or float16 autocast on a GPU, float32 on a CPU
    scaler = precision.grad_scaler()  # float16 only: scales the loss so small gradients do not vanish
    batches = shuffled_batches(len(rows), config.batch_size, total_steps, seed)  # the same on every rank
    trained = distributed.wrap(model)  # under torchrun: DDP, which averages the gradients over the processes
    history = []
    model.train()
    start = time.perf_counter()
    for step, indices in enumerate(tqdm(batches, total=total_steps, desc="SFT", disable=not distributed.is_main())):
        batch_rows = [rows[i] for i in distributed.shard(indices)]  # this process's part of the global batch
        batch = {k: v.to(device) for k, v in collate(batch_rows, pad_token_id).items()}
        lr = cosine_lr(step, total_steps, config.warmup_steps, config.lr)
        set_lr(optimizer, lr)
        with precision.autocast():
            logits = trained(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = loss_fn(logits.float(), batch["labels"])  # the loss in float32 under any autocast
        check_finite(loss, "the SFT loss", step)
        # a mean over answer tokens: over all the processes' tokens, not a mean of each process's mean
        loss = distributed.global_mean(loss, (batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        backward_and_step(loss, optimizer, scaler, model.parameters())
        record = {"step": step, "loss": distributed.all_reduce_mean(loss).item(), "lr": lr,
                  "elapsed_s": time.perf_counter() - start}
        history.append(record)
        if on_step:
            on_step(record)
    model.eval()
    return history
