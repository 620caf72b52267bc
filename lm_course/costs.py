"""Measuring what a training step costs: FLOPs, where the time goes, saved activations.

Chapter 8 checks the rule of thumb "training costs about 6 N FLOPs per token" against
a count of the FLOPs PyTorch actually runs, splits a step's time into matrix products
and everything else, and measures what gradient checkpointing saves. The pieces:

* :func:`count_flops` -- the FLOPs of a function, counted operation by operation by
  ``torch.utils.flop_counter`` (matrix products and attention; element-wise work such
  as GELU or a layer norm counts nothing);
* :func:`time_by_kind` -- a profile of a function, its self time grouped into matrix
  products, the attention kernel and everything else;
* :func:`saved_activation_bytes` -- the bytes autograd keeps for the backward pass,
  weights excluded: the memory that grows with the batch;
* :func:`gradient_checkpointing` -- run chosen modules under
  ``torch.utils.checkpoint``: their inside activations are dropped after the forward
  pass and computed again during the backward pass.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "KINDS",
    "count_flops",
    "gradient_checkpointing",
    "saved_activation_bytes",
    "time_by_kind",
]

# Profiler op names by kind: the matrix products (with and without a bias, batched),
# and the fused attention kernels of PyTorch (forward and backward, CPU and GPU).
_MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_int_mm"}
_ATTENTION_PREFIX = "aten::_scaled_dot_product"
_ATTENTION_INSIDE = ("flash_attention", "efficient_attention", "cudnn_attention")
KINDS = ("matrix products", "attention kernel", "everything else")


def count_flops(fn: Callable[[], Any]) -> dict[str, int]:
    """Run ``fn()`` and count its floating-point operations by PyTorch operator.

    Returns ``{"total": n, "aten.mm": n_mm, ...}``; a multiply-add counts as 2. Covers
    forward and backward when ``fn`` calls ``.backward()``.
    """
    with FlopCounterMode(display=False) as counter:
        fn()
    counts = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return {"total": int(counter.get_total_flops()), **counts}


def _kind(name: str) -> str:
    if name in _MATMUL_OPS:
        return KINDS[0]
    if name.startswith(_ATTENTION_PREFIX) and any(k in name for k in _ATTENTION_INSIDE):
        return KINDS[1]
    return KINDS[2]


def time_by_kind(fn: Callable[[], Any], repeats: int = 3) -> dict[str, float]:
    """Profile ``repeats`` calls of ``fn()``; seconds of CPU self time per kind.

    Self time is the time spent in an operator itself, not in the operators it calls,
    so nothing is counted twice. On a GPU the kernels run asynchronously: this profile
    measures the CPU side only (use the profiler's CUDA activity there).
    """
    fn()  # warm-up: first calls allocate and pick kernels
    activities = [torch.profiler.ProfilerActivity.CPU]
    with _stderr_muted(), torch.profiler.profile(activities=activities) as p:
        for _ in range(repeats):
            fn()
    seconds = dict.fromkeys(KINDS, 0.0)
    for event in p.key_averages():
        seconds[_kind(event.key)] += event.self_cpu_time_total / 1e6 / repeats
    return seconds


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
    """Silence file descriptor 2: the profiler's C++ side logs its start and stop
    there, with a date, which would land in a notebook's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def saved_activation_bytes(
    fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()
) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``fn()`` runs.

    Each storage is counted once (a tensor saved by two operations, or two views of
    one buffer, take memory once), and storages of ``exclude`` (pass the model's
    parameters) are left out: weights are in memory anyway.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    sizes: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            sizes[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(sizes.values())


@contextlib.contextmanager
def gradient_checkpointing(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Inside the ``with`` block, each of ``modules`` runs under activation
    checkpointing: only its inputs are kept for the backward pass, which runs its
    forward pass once more to rebuild the rest. Results and gradients are unchanged
    (dropout included: the random state is replayed)."""
    modules = list(modules)
    for module in modules:
        # An instance attribute shadows the class's forward; deleting it restores it.
        module.forward = functools.partial(
            checkpoint, type(module).forward.__get__(module), use_reentrant=False
        )
    try:
        yield
    finally:
        for module in modules:
            del module.forward
