"""Pipeline parallelism, simulated exactly: a stack of layers cut into stages.

Device ``s`` holds layers ``s * L / p`` to ``(s + 1) * L / p - 1``. A batch must pass
through the stages in order, so with one batch only one device works at a time. GPipe
(Huang et al., 2019) cuts the batch into ``m`` micro-batches: while stage 1 works on
micro-batch 2, stage 2 already works on micro-batch 1. Each stage still idles while the
pipeline fills and drains; of the ``m + p - 1`` time slots of a forward pass, each
stage works in ``m``, so the idle share (the *bubble*) is ``(p - 1) / (m + p - 1)``.
The backward pass runs the same way in reverse.

Every micro-batch crosses each of the ``p - 1`` boundaries twice per step: its
activations forward, their gradient backward, ``(micro, seq, d)`` numbers each time.
Gradients of the weights add up over micro-batches, so the result equals one pass over
the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..checks import check_int
from .comm import Comm

__all__ = ["bubble_fraction", "gpipe_schedule", "pipeline_forward", "split_stages"]


def split_stages(layers: Sequence[nn.Module], n_stages: int) -> list[nn.Sequential]:
    """Consecutive groups of ``layers``, as equal as possible, one per stage."""
    check_int("n_stages", n_stages, minimum=1, maximum=len(layers))
    bounds = [round(i * len(layers) / n_stages) for i in range(n_stages + 1)]
    return [nn.Sequential(*layers[a:b]) for a, b in zip(bounds, bounds[1:])]


def gpipe_schedule(n_stages: int, n_micro: int) -> list[list[str]]:
    """What each stage does in each time slot of one GPipe step.

    Returns ``n_stages`` rows of ``2 (n_micro + n_stages - 1)`` cells: ``"F3"`` (forward
    of micro-batch 3), ``"B3"`` (its backward) or ``""`` (idle, the bubble). The
    forward of micro-batch ``j`` reaches stage ``s`` at slot ``s + j``; the backward
    starts once every forward is done, from the last stage back.
    """
    check_int("n_stages", n_stages, minimum=1)
    check_int("n_micro", n_micro, minimum=1)
    span = n_micro + n_stages - 1
    grid = [["" for _ in range(2 * span)] for _ in range(n_stages)]
    for s in range(n_stages):
        for j in range(n_micro):
            grid[s][s + j] = f"F{j}"
            grid[s][span + (n_stages - 1 - s) + j] = f"B{j}"
    return grid


def bubble_fraction(n_stages: int, n_micro: int) -> float:
    """The share of a GPipe step each stage spends idle: ``(p - 1) / (m + p - 1)``."""
    check_int("n_stages", n_stages, minimum=1)
    check_int("n_micro", n_micro, minimum=1)
    return (n_stages - 1) / (n_micro + n_stages - 1)


def pipeline_forward(
    stages: Sequence[nn.Module], x: Tensor, n_micro: int, comm: Comm
) -> Tensor:
    """Run ``x`` ``(batch, ...)`` through ``stages`` as ``n_micro`` micro-batches in
    GPipe's forward order, logging every hand-over between stages.

    Returns the outputs of all micro-batches joined along the batch dimension: the
    same as the stages applied to the whole batch (for layers that treat rows
    independently, as a Transformer's do). The autograd graph is kept, so a backward
    pass from the result gives the gradients of one pass over the whole batch.
    """
    check_int("n_micro", n_micro, minimum=1, maximum=x.size(0))
    micro = list(x.tensor_split(n_micro, dim=0))
    schedule = gpipe_schedule(len(stages), n_micro)
    # Walk the forward half of the schedule slot by slot, as the devices would.
    for slot in range(n_micro + len(stages) - 1):
        for s, stage in enumerate(stages):
            cell = schedule[s][slot]
            if cell.startswith("F"):
                j = int(cell[1:])
                if s > 0:  # the activations arrive from the previous stage
                    micro[j] = comm.send(micro[j])
                micro[j] = stage(micro[j])
    return torch.cat(micro, dim=0)
