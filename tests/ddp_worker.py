"""Launched by test_distributed.py under torchrun: trains TinyLM data-parallel.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... tests/ddp_worker.py OUT
Rank 0 writes the final checkpoint to OUT; each rank writes rank-<r>.json with what it
saw, so the test can check that both processes took part. With a second argument
``budget`` it trains with a time budget instead and writes budget-<r>.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from training_helpers import make_model, markov_tokens

from lm_course.training import (
    LMBatches,
    TrainConfig,
    default_loss,
    train,
    train_val_split,
)

# Shared with test_distributed.py, which trains the same thing in one process.
BATCH_SIZE, BLOCK_SIZE = 8, 12
CONFIG = {
    "max_steps": 12,
    "lr": 1e-2,
    "warmup_steps": 3,
    "grad_accum": 2,
    "eval_every": 6,
    "eval_batches": 2,
    "log_every": 1,
    "device": "cpu",
    "progress": False,
}


def main(out_dir: Path) -> None:
    """Train and let rank 0 save the final checkpoint in ``out_dir``."""
    torch.set_num_threads(1)
    model = make_model(seed=0, dropout=0.0)
    batches = LMBatches(train_val_split(markov_tokens()), BLOCK_SIZE, BATCH_SIZE)
    seen: list[list[int]] = []

    def loss_fn(
        model: torch.nn.Module, batch: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        if not seen:  # the first local micro-batch this rank trained on
            seen.extend(batch[0].tolist())
        return default_loss(model, batch)

    history = train(
        model, batches, TrainConfig(**CONFIG, checkpoint_dir=out_dir), loss_fn=loss_fn
    )
    rank = int(os.environ["RANK"])
    report = {
        "rank": rank,
        "world_size": int(os.environ["WORLD_SIZE"]),
        "loss": history.train_loss,
        "first_batch": seen,
    }
    (out_dir / f"rank-{rank}.json").write_text(json.dumps(report))


def budget(out_dir: Path) -> None:
    """Train for a second of wall-clock time; report each rank's rates and weights.

    Each rank reads its own clock, yet they must agree on every learning rate and on
    when to stop, or the copies drift apart and a rank that stops early hangs the other.
    """
    torch.set_num_threads(1)
    model = make_model(seed=0, dropout=0.0)
    batches = LMBatches(train_val_split(markov_tokens()), BLOCK_SIZE, BATCH_SIZE)
    timed = {**CONFIG, "max_steps": None, "time_budget_s": 1.0, "eval_batches": 0}
    history = train(model, batches, TrainConfig(**timed))
    report = {
        "lr": history.lr,
        "weights": [p.sum().item() for p in model.parameters()],
    }
    (out_dir / f"budget-{os.environ['RANK']}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[2:] == ["budget"]:
        budget(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
