"""Tensor parallelism, simulated exactly: one layer's matrix split across devices.

A linear layer computes ``y = x W^T`` with ``W`` ``(out, in)``. Two ways to cut ``W``
between ``n`` devices (Shoeybi et al., 2019, "Megatron-LM"):

* **column-parallel** -- each device holds ``out / n`` rows of ``W`` (columns of the
  ``(in, out)`` matrix of the paper) and computes its ``out / n`` output features from
  the whole input. Nothing is summed; if the next step needs the whole output, an
  all-gather joins it.
* **row-parallel** -- each device holds ``in / n`` columns of ``W`` and sees only its
  ``in / n`` input features, so it computes a *partial* output of full width; an
  all-reduce sums the partial outputs.

An MLP chains the two with no communication in between: the first layer column-split,
GELU applied on each device to its own features (it acts element by element), the
second layer row-split -- one all-reduce per MLP forward pass (and one in the backward
pass, for the gradient of the input).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .comm import Comm

__all__ = [
    "column_parallel_linear",
    "row_parallel_linear",
    "split_features",
    "tensor_parallel_mlp",
]


def split_features(tensor: Tensor, n: int, dim: int) -> list[Tensor]:
    """``tensor`` cut into ``n`` equal pieces along ``dim`` (``n`` must divide it)."""
    check_int("n", n, minimum=1)
    if tensor.size(dim) % n:
        raise ValueError(
            f"{n} devices cannot split a dimension of size {tensor.size(dim)} evenly; "
            "use a number of devices that divides it"
        )
    return list(tensor.chunk(n, dim=dim))


def column_parallel_linear(
    x: Tensor, weight: Tensor, n: int, comm: Comm, *, gather: bool = True
) -> list[Tensor]:
    """``x`` ``(..., in)`` times the rows of ``weight`` ``(out, in)`` split over ``n``
    devices.

    Returns per-device outputs: ``(..., out / n)`` each, or, with ``gather``, the whole
    ``(..., out)`` on every device after an all-gather.
    """
    shards = split_features(weight, n, dim=0)  # device i: (out / n, in)
    outputs = [F.linear(x, shard) for shard in shards]
    return comm.all_gather(outputs, dim=-1) if gather else outputs


def row_parallel_linear(
    x_parts: list[Tensor], weight: Tensor, comm: Comm
) -> list[Tensor]:
    """Per-device inputs ``(..., in / n)`` times the matching columns of ``weight``
    ``(out, in)``; an all-reduce sums the partial ``(..., out)`` outputs."""
    shards = split_features(weight, len(x_parts), dim=1)  # device i: (out, in / n)
    partial = [F.linear(x, shard) for x, shard in zip(x_parts, shards)]
    return comm.all_reduce(partial)


def tensor_parallel_mlp(
    x: Tensor, fc: nn.Linear, proj: nn.Linear, n: int, comm: Comm
) -> Tensor:
    """``proj(gelu(fc(x)))`` for ``x`` ``(..., d)`` on ``n`` devices; one all-reduce.

    Biases are left out (the course's models have none): a row-parallel layer would add
    its bias once, after the all-reduce.
    """
    if fc.bias is not None or proj.bias is not None:
        raise ValueError("tensor_parallel_mlp simulates layers without biases")
    hidden = column_parallel_linear(x, fc.weight, n, comm, gather=False)
    hidden = [F.gelu(h) for h in hidden]  # element by element: no communication
    return row_parallel_linear(hidden, proj.weight, comm)[0]
