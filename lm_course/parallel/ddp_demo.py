"""Data parallelism for real: the same small training run in one process or several.

Run in one process, :func:`demo_run` trains a small character-level GPT on Tiny
Shakespeare. Started by ``torchrun`` with ``n`` processes, each process trains its
``1 / n`` of every global batch and DistributedDataParallel averages the gradients, so
the losses match the single process up to the order of floating-point sums::

    python -m torch.distributed.run --nproc_per_node=2 -m lm_course.parallel.ddp_demo \\
        out.json

Rank 0 writes what it saw to ``out.json``. On a machine with GPUs the same command
(one process per GPU) trains on ``cuda:LOCAL_RANK`` with the NCCL backend.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch

from ..charlm import shakespeare_batches
from ..models.gpt import GPT, GPTConfig
from ..training import TrainConfig, train

__all__ = ["demo_run", "DEMO"]

#: The run: a 2-layer GPT of width 64, 30 steps of a global batch of 16 windows.
DEMO: dict[str, Any] = {
    "model": dict(
        vocab_size=65, block_size=64, n_layer=2, n_head=4, d_model=64, dropout=0.0
    ),
    "batch_size": 16,
    "train": dict(
        max_steps=30,
        lr=3e-3,
        warmup_steps=5,
        log_every=5,
        eval_every=15,
        eval_batches=4,
        seed=0,
        progress=False,
    ),
}


def demo_run(device: str = "cpu") -> dict[str, Any]:
    """Train the :data:`DEMO` run; returns the losses and a checksum of the weights.

    Returns ``{"world_size", "steps", "train_loss", "val_loss", "weight_sum"}``; under
    ``torchrun`` every process returns the same numbers.
    """
    config = DEMO["model"]
    _, batches = shakespeare_batches(config["block_size"], DEMO["batch_size"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(**config))
    history = train(model, batches, TrainConfig(**DEMO["train"], device=device))
    return {
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "steps": history.steps,
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "weight_sum": float(
            sum(p.detach().double().abs().sum() for p in model.parameters())
        ),
    }


def main(argv: list[str]) -> None:
    """Under torchrun: train; rank 0 writes the result to the file ``argv[0]``."""
    torch.set_num_threads(1)
    result = demo_run()
    if int(os.environ.get("RANK", "0")) == 0:
        with open(argv[0], "w", encoding="utf-8") as handle:
            json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
