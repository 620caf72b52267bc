"""Data parallelism: several processes, one model copy each, one shared global batch.

Started with ``torchrun --nproc_per_node=N script.py``, every process ("rank") runs the
same script. ``torchrun`` tells each one who it is through environment variables
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``). Each rank computes gradients on its own
slice of the global batch; DistributedDataParallel then averages the gradients across
ranks during the backward pass, so every copy takes the same optimizer step and the
copies never drift apart.

The result equals one process training on the whole global batch: the mean of the ranks'
mean losses is the mean loss over the whole batch when the slices are the same size.

For simplicity every rank draws the same global batch from the same seeded generator and
keeps only its slice; drawing a few thousand token ids is cheap next to the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistInfo:
    """Who this process is: ``rank`` of ``world_size``, ``local_rank`` on this machine.

    ``owns_group`` is True when :func:`init_distributed` created the process group (and
    so :func:`cleanup_distributed` should destroy it).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that saves checkpoints and shows progress."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} must be an integer; torchrun sets "
            "it"
        ) from None


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group when started by ``torchrun`` with ``WORLD_SIZE`` > 1.

    Uses the ``nccl`` backend for CUDA and ``gloo`` otherwise. Outside ``torchrun`` (or
    with a single process) this does nothing and returns rank 0 of 1. A process group
    that the caller already initialised is used as it is.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(
        rank=rank, local_rank=local_rank, world_size=world_size, owns_group=owns_group
    )


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_batch(
    batch: tuple[Tensor, ...], rank: int, world_size: int
) -> tuple[Tensor, ...]:
    """This rank's contiguous slice of every tensor in a global batch (along dim 0).

    ``(global_batch, ...)`` becomes ``(global_batch // world_size, ...)``; rank 0 takes
    the first rows, rank 1 the next, and so on.
    """
    if world_size == 1:
        return batch
    rows = batch[0].shape[0]
    if rows % world_size != 0:
        raise ValueError(
            f"the global micro-batch has {rows} rows, which {world_size} processes "
            "cannot split evenly; choose a batch size divisible by the world size "
            f"({world_size})"
        )
    return tuple(tensor.chunk(world_size)[rank] for tensor in batch)


def all_reduce_mean(value: Tensor, info: DistInfo) -> Tensor:
    """The mean of a scalar tensor over all ranks (the value itself with one rank)."""
    if not info.enabled:
        return value
    total = value.detach().clone().float()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / info.world_size


def from_rank_zero(value: float, info: DistInfo, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (the value itself with one process).

    Ranks that read their own clocks disagree by a little; a decision taken from the
    clock (stop now? which learning rate?) must be the same everywhere, or the model
    copies drift apart and a rank that stops early leaves the others waiting.
    """
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def device_for_rank(device: torch.device, info: DistInfo) -> torch.device:
    """With several processes on one machine, rank ``i`` uses GPU ``local_rank``."""
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device
