"""Phase 0: pretraining, next-token prediction on the generated corpus (notebook 01).

A training loop in the spirit of nanoGPT: documents are joined with EOS and cut into fixed blocks, and
every token predicts the next one. The base model learns the world's language, and its bad habits too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_course.config import PretrainConfig
from rlhf_course.engine import distributed
from rlhf_course.engine.precision import training_precision
from rlhf_course.engine.training import backward_and_step, check_finite, cosine_lr, make_optimizer, set_lr


def tokenize_corpus(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> torch.Tensor:
    """All `texts` as one stream of token ids, each document followed by EOS: (N,).

    Pass a list (`dataset["text"][:]`): a `datasets` column read row by row takes seconds per 100k documents.
    """
    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False).input_ids:
        ids += encoded + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t+1 from tokens ≤ t.

    L = −1/(B·(T−1)) Σ_b Σ_t log p(x_{t+1} | x_≤t). logits (B, T, V), input_ids (B, T).
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), input_ids[:, 1:].flatten())


def random_blocks(stream: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """`batch_size` random windows of `block_size` tokens from the stream: (B, block_size)."""
    starts = torch.randint(0, len(stream) - block_size, (batch_size,), generator=generator)
    return torch.stack([stream[s : s + block_size] for s in starts.tolist()])


@torch.no_grad()
def heldout_loss(model: PreTrainedModel, stream: torch.Tensor, block_size: int, batch_size: int = 32) -> float:
    """Mean next-token loss over consecutive blocks of a held-out stream."""
    model.eval()
    n_blocks = len(stream) // block_size
    blocks = stream[: n_blocks * block_size].view(n_blocks, block_size)
    losses = []
    for start in range(0, n_blocks, batch_size):
        batch = blocks[start : start + batch_size].to(model.device)
        losses.append(next_token_loss(model(input_ids=batch).logits, batch).item() * len(batch))
    return sum(losses) / n_blocks


def pretrain(
    model: PreTrainedModel,
    train_stream: torch.Tensor,
    config: PretrainConfig,
    seed: int = 0,
    on_step=None,
    loss_fn=next_token_loss,
) -> list[dict]:
    """Train `model` on random blocks of `train_stream`; returns the history `[{"step", "loss", "lr"}]`.

    `on_step(record)` is called after every step (e.g. to draw a live plot). `loss_fn(logits, input_ids)`: the
    loss (notebook 01 passes the one written in its exercise).
    """
    device = model.device
    distributed.check_global_batch(config.batch_size, len(train_stream) - config.block_size, "pretraining")
    generator = torch.Generator().manual_seed(seed)  # the same on every rank: all draw the same global batch
    optimizer = make_optimizer(model.parameters(), config.lr, config.weight_decay)
    precision = training_precision(device)  # bfloat16 or float16 autocast on a GPU, float32 on a CPU
    scaler = precision.grad_scaler()  # float16 only: scales the loss so small gradients do not vanish
    history = []
    model.train()
    # A small model is many small kernels; torch.compile fuses them (on a GPU: 2.2x the tokens/s, see
    # benchmarks/results/gpu_h200.md). Only the training forward is compiled; the model itself is unchanged.
    trained = distributed.wrap(model)  # under torchrun: DDP, which averages the gradients over the processes
    forward = torch.compile(trained) if config.compile and device.type == "cuda" else trained
    start = time.perf_counter()
    for step in tqdm(range(config.steps), desc="pretraining", disable=not distributed.is_main()):
        lr = cosine_lr(step, config.steps, config.warmup_steps, config.lr)
        set_lr(optimizer, lr)
        batch = random_blocks(train_stream, config.batch_size, config.block_size, generator)
        batch = distributed.shard(batch).to(device)  # this process's rows of the global batch
        with precision.autocast():
            try:
                logits = forward(input_ids=batch).logits
            except Exception as error:  # a compiler failure must not cost the run: train eagerly instead
                if forward is trained:
                    raise
                print(f"torch.compile failed ({type(error).__name__}: {error}); training without it")
                forward = trained
                logits = forward(input_ids=batch).logits
        loss = loss_fn(logits.float(), batch)  # the loss in float32 under any autocast
        check_finite(loss, "the pretraining loss", step)
        backward_and_step(loss, optimizer, scaler, model.parameters())
        # every rank has as many tokens, so the mean of the ranks' means is the global batch's mean
        record = {"step": step, "loss": distributed.all_reduce_mean(loss).item(), "lr": lr,
                  "elapsed_s": time.perf_counter() - start}
        history.append(record)
        if on_step:
            on_step(record)
    model.eval()
    return history
