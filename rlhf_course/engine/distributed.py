"""Data-parallel training with `torch.distributed`: what changes when a loop runs in N processes (`torchrun`).

Every process (a "rank") holds a full copy of the model and takes its slice of the same global batch; after
`backward()`, `DistributedDataParallel` averages the gradients over the ranks, so every copy takes the same
optimiser step. That step equals one process's step on the whole batch when each rank's loss is weighted by its
share of what the loss averages over (tokens, pairs): `global_mean`.

    torchrun --nproc_per_node 2 -m rlhf_course train sft     # 2 processes: gloo on CPU, NCCL with one GPU each

Without `torchrun` (a notebook, `python -m rlhf_course train …`) there is one process and every function here
returns its input untouched: the loops run exactly as they did before this module existed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside a process group (started by `setup()` under `torchrun`)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number, 0 … world_size − 1 (0 without torchrun)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together (1 without torchrun)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes files (checkpoints, report.json): rank 0 only, so that N ranks don't race."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """`torchrun` tells each process who it is through these environment variables."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def setup() -> torch.device:
    """Join the process group `torchrun` describes (nothing to join without it); returns this process's device.

    gloo on CPU; NCCL on CUDA, one GPU per process (the local rank's), so N processes on one node use N GPUs."""
    cuda = torch.cuda.is_available()
    if not launched_by_torchrun():
        return torch.device("cuda" if cuda else "cpu")
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not is_distributed():
        dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device if cuda else None)
    return device


def cleanup() -> None:
    """Leave the process group (a no-op in one process)."""
    if is_distributed():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module to call in the training forward: `DistributedDataParallel(model)` under torchrun (its
    `backward()` averages the gradients over the ranks), `model` itself in one process. Both share the weights."""
    if not is_distributed():
        return model
    device_ids = [model.device] if next(model.parameters()).is_cuda else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def check_global_batch(batch_size: int, n_items: int, what: str) -> None:
    """Refuse, before training, a global batch the ranks cannot share: one that does not divide by the number of
    processes, or fewer training items than processes (a rank would have nothing to learn from)."""
    n = world_size()
    if batch_size % n:
        raise ValueError(f"{what}: the global batch of {batch_size} does not split evenly over {n} processes; "
                         f"use a batch size that is a multiple of {n}, or another --nproc_per_node")
    if n_items < n:
        raise ValueError(f"{what}: {n_items} training item(s) for {n} processes; every process needs at least one")


def shard(items: Sequence, what: str = "the batch") -> Sequence:
    """This rank's contiguous slice of a global batch (a list or a tensor's first dimension): ranks 0 … N−1
    together hold every item once, in order; sizes differ by at most one. The batch itself in one process."""
    n = world_size()
    if n == 1:
        return items
    if len(items) < n:
        raise ValueError(f"{what} holds {len(items)} item(s) for {n} processes; every process needs at least one")
    bounds = [len(items) * r // n for r in range(n + 1)]
    return items[bounds[rank()] : bounds[rank() + 1]]


def _all_reduce(tensor: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
    """`op` of `tensor` over the ranks, elementwise, in a new tensor (`tensor` itself in one process)."""
    if not is_distributed():
        return tensor
    reduced = tensor.detach().clone()
    dist.all_reduce(reduced, op=op)
    return reduced


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over the ranks (a new tensor; `tensor` itself in one process)."""
    return _all_reduce(tensor, dist.ReduceOp.SUM)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over the ranks (a new tensor; `tensor` itself in one process)."""
    if not is_distributed():
        return tensor
    return all_reduce_sum(tensor) / world_size()


def global_mean(local_mean: torch.Tensor, local_count: int | torch.Tensor) -> torch.Tensor:
    """This rank's part of the mean over the whole global batch, for `backward()`: `local_mean · n_r · N / n`,
    with n_r the items (tokens, pairs) this rank averaged over and n their total over the N ranks.

    DDP averages gradients, i.e. divides their sum by N; so the gradient becomes Σ_r ∇(n_r · local_mean_r) / n,
    the gradient of the mean over all n items, as one process would compute it. A plain per-rank mean would
    give a rank with few answer tokens as much weight as one with many. `all_reduce_mean` of the result is the
    global mean itself (the number to log). In one process: `local_mean`, untouched."""
    if not is_distributed():
        return local_mean
    count = torch.as_tensor(local_count, dtype=torch.float32, device=local_mean.device)
    return local_mean * (count * world_size() / all_reduce_sum(count))


def logged_mean(local_mean: torch.Tensor, local_count: int | torch.Tensor) -> torch.Tensor:
    """The mean over the whole global batch of a metric each rank averaged over its `local_count` items (what
    one process would log); `local_mean` itself in one process."""
    if not is_distributed():
        return local_mean
    return all_reduce_mean(global_mean(local_mean.detach(), local_count))


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of `tensor`, rank 0's first: the global batch, on every rank (`tensor` itself in one
    process). The ranks must hold as many rows each; a second dimension that differs between them (answers of
    different lengths) is padded on the right with zeros to the longest, which answer masks of 0 ignore."""
    if not is_distributed():
        return tensor
    if tensor.dtype == torch.bool:  # gloo gathers numbers, not booleans
        return all_gather_rows(tensor.to(torch.uint8)).bool()
    local = tensor.detach()
    if local.dim() > 1:  # the same number of columns everywhere: the longest rank's
        columns = all_reduce_max(torch.tensor(local.shape[1], device=local.device)).item()
        local = torch.nn.functional.pad(local, (0, 0) * (local.dim() - 2) + (0, columns - local.shape[1]))
    parts = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The largest value of `tensor` over the ranks, elementwise (`tensor` itself in one process)."""
    return _all_reduce(tensor, dist.ReduceOp.MAX)
