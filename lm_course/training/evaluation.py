"""Batches in, a loss out: what the trainer asks of ``get_batch`` and ``loss_fn``.

:func:`evaluate` measures the loss on fixed batches, so that the points of a loss curve
are comparable.

The trainer knows no model. It hands ``get_batch(split, generator)`` a generator seeded
from ``(seed, step, micro_step)`` (or, for evaluation, ``(seed, split, index)``), moves
the batch to the model's device and calls ``loss_fn(model, batch)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..checks import check_int
from .device import autocast, make_generator, model_device
from .distributed import DistInfo, all_reduce_mean, shard_batch

Batch = tuple[Tensor, ...]
GetBatch = Callable[[str, torch.Generator], Batch]
LossFn = Callable[[nn.Module, Batch], Tensor]

# Tags that keep the random streams for different purposes apart in derive_seed.
TRAIN_DATA, EVAL_DATA, DROPOUT = 1, 2, 3


def default_loss(model: nn.Module, batch: Batch) -> Tensor:
    """``out = model(*batch)``; the loss is ``out[1]`` for a tuple/list, else ``out``.

    The course's models are called as ``model(x, targets)`` and return
    ``(logits, loss, ...)``, which this handles. For anything else pass your own
    ``loss_fn(model, batch)``.
    """
    out = model(*batch)
    if isinstance(out, tuple | list):
        if len(out) < 2 or out[1] is None:
            raise ValueError(
                "the model returned a tuple without a loss at position 1; the default "
                "loss_fn calls model(*batch) and expects (logits, loss, ...). Make "
                "get_batch return the targets too, or pass "
                "loss_fn=lambda model, batch: ..."
            )
        return out[1]
    return out


def check_loss(loss: Any, *, training: bool) -> Tensor:
    """Make sure ``loss_fn`` gave a scalar float tensor (that can be backpropagated)."""
    if not torch.is_tensor(loss) or loss.dim() != 0 or not loss.is_floating_point():
        shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
        raise ValueError(
            f"loss_fn must return a scalar float tensor (shape ()), got {shape}; if "
            "the model returns logits, pass "
            "loss_fn=lambda model, batch: F.cross_entropy(...)"
        )
    if training and not loss.requires_grad:
        raise ValueError(
            "the loss does not depend on any trainable parameter (loss.requires_grad "
            "is False); check that loss_fn computes it from the model's output"
        )
    return loss


def fetch_batch(get_batch: GetBatch, split: str, generator: torch.Generator) -> Batch:
    """Call ``get_batch`` and check that it returned a non-empty tuple of tensors."""
    batch = get_batch(split, generator)
    if (
        not isinstance(batch, tuple | list)
        or not batch
        or not all(torch.is_tensor(item) for item in batch)
    ):
        raise TypeError(
            f"get_batch({split!r}, generator) must return a tuple of tensors such as "
            f"(x, y), got {type(batch).__name__}"
        )
    rows = {item.shape[0] if item.dim() else None for item in batch}
    if len(rows) != 1 or None in rows:
        raise ValueError(
            f"get_batch({split!r}, generator) returned tensors whose first (batch) "
            f"dimensions differ or are missing: shapes "
            f"{[tuple(item.shape) for item in batch]}"
        )
    return tuple(batch)


def train_batch_generator(seed: int, step: int, micro_step: int) -> torch.Generator:
    """The generator the trainer hands ``get_batch`` for ``(step, micro_step)``."""
    return make_generator(seed, TRAIN_DATA, step, micro_step)


def eval_batch_generator(seed: int, split: str, index: int) -> torch.Generator:
    """The generator for evaluation batch ``index`` of ``split``: the same each time."""
    # crc32 gives the split name a stable number; Python's hash() changes between
    # processes.
    return make_generator(seed, EVAL_DATA, zlib.crc32(split.encode()), index)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Every tensor of the batch on ``device`` (copies overlap compute if they can)."""
    return tuple(tensor.to(device, non_blocking=True) for tensor in batch)


def count_tokens(batch: Batch) -> int | None:
    """Token ids in the batch's first tensor; None if it does not hold integer ids."""
    first = batch[0]
    return None if first.is_floating_point() else first.numel()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    get_batch: GetBatch,
    split: str = "val",
    *,
    batches: int = 10,
    seed: int = 1337,
    loss_fn: LossFn | None = None,
    precision: str | torch.dtype = "float32",
    dist_info: DistInfo | None = None,
) -> float:
    """Mean loss of ``model`` over ``batches`` fixed batches of ``split``.

    The batches depend only on ``(seed, split, i)``, so every evaluation during a run
    (and in a resumed run) sees the same data and the points of a loss curve are
    comparable. Runs in ``model.eval()`` mode (no dropout) without building a graph, and
    restores the model's previous mode. With several processes, each evaluates its slice
    of every batch and the result is averaged over them.
    """
    check_int("batches", batches, minimum=1)
    loss_fn = loss_fn or default_loss
    info = dist_info or DistInfo()
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        total = torch.zeros((), device=device)
        for index in range(batches):
            generator = eval_batch_generator(seed, split, index)
            batch = fetch_batch(get_batch, split, generator)
            local = to_device(shard_batch(batch, info.rank, info.world_size), device)
            with autocast(device, precision):
                loss = check_loss(loss_fn(model, local), training=False)
            total += loss.float()
        return all_reduce_mean(total / batches, info).item()
    finally:
        model.train(was_training)
