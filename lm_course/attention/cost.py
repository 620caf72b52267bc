"""Measuring what attention costs: time, peak memory, and how fast they grow.

The chapter's claims about cost ("quadratic in the sequence length", "linear with a
window") are claims about *growth*. On log-log axes a cost ``c * T^p`` is a straight
line of slope ``p``, so :func:`loglog_slope` turns a handful of measurements into the
exponent they follow. The times come from :func:`time_call` (the best of a few runs:
other programs only ever make a run slower) and the memory from :func:`peak_memory`
(the most bytes the call held at once, counted by the allocator). :func:`matmul_macs`
counts the work of a layer on paper, to compare with.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from lm_course.checks import check_int

__all__ = ["time_call", "peak_memory", "loglog_slope", "matmul_macs"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    *,
    repeats: int = 3,
    warmup: int = 1,
) -> float:
    """The fastest of ``repeats`` timed calls of ``fn()``, in seconds.

    ``warmup`` untimed calls come first (the first call of a kernel pays for setup).
    On a GPU the clock waits for the device to finish before it stops.
    """
    device = torch.device(device)
    check_int("repeats", repeats, minimum=1)
    check_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ log lines (they would land in notebook outputs)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn: Callable[[], Any], device: torch.device | str = "cpu") -> int:
    """The most bytes that ``fn()`` held at once beyond what existed before, in bytes.

    On a GPU this is the CUDA allocator's peak; on a CPU, PyTorch's profiler records
    every allocation and release of the call and the peak is the highest running sum.
    Either way it counts the tensors ``fn`` creates, its result included, and the
    scratch memory of the kernels it calls.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    activities = [torch.profiler.ProfilerActivity.CPU]
    with (
        _quiet_stderr(),
        torch.profiler.profile(activities=activities, profile_memory=True) as prof,
    ):
        fn()
    records = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    held = peak = 0
    for record in sorted(records, key=lambda e: e.start_ns()):
        held += record.nbytes()
        peak = max(peak, held)
    return peak


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``log y`` against ``log x``: the growth exponent.

    ``ys = c * xs ** p`` gives ``p`` exactly; measurements give the exponent they
    follow best. Needs at least two distinct positive ``xs`` and positive ``ys``.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(
            f"need two or more (x, y) pairs, got {len(xs)} x and {len(ys)} y"
        )
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError("every x and y must be > 0 to take logarithms")
    lx = torch.tensor([math.log(x) for x in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(y) for y in ys], dtype=torch.float64)
    lx_c = lx - lx.mean()
    if float(lx_c.abs().max()) == 0.0:
        raise ValueError("the xs must not all be equal")
    return float((lx_c * (ly - ly.mean())).sum() / (lx_c * lx_c).sum())


def matmul_macs(seq: int, d_model: int) -> dict[str, int]:
    """Multiply-adds of one attention layer on ``seq`` tokens of width ``d_model``.

    ``"projections"``: queries, keys, values and output, four ``d x d`` matrices per
    token, ``4 * seq * d^2``. ``"scores and sums"``: ``q k^T`` and ``weights @ v``,
    ``2 * seq^2 * d`` for every pair (a causal mask halves what a kernel must
    compute, if it skips the masked half). They are equal at ``seq = 2 * d``; past it
    the quadratic term dominates.
    """
    check_int("seq", seq, minimum=1)
    check_int("d_model", d_model, minimum=1)
    return {
        "projections": 4 * seq * d_model**2,
        "scores and sums": 2 * seq**2 * d_model,
    }
