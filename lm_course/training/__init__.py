"""Training, independent of any model: a hand-written loop with checkpoints and DDP.

``train(model, get_batch, TrainConfig(...))`` is the entry point; ``LMBatches`` turns a
token stream into the ``get_batch`` it needs.
"""

from .batches import LMBatches, train_val_split
from .checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
    unwrap_model,
)
from .device import (
    autocast,
    available_devices,
    derive_seed,
    describe_device,
    make_generator,
    pick_device,
    resolve_precision,
    seed_everything,
    seed_torch,
)
from .distributed import DistInfo, init_distributed, shard_batch
from .schedule import cosine_decay, lr_at_step, warmup_factor
from .trainer import (
    History,
    TrainConfig,
    default_loss,
    eval_batch_generator,
    evaluate,
    make_optimizer,
    train,
    train_batch_generator,
)

__all__ = [
    "DistInfo",
    "History",
    "LMBatches",
    "TrainConfig",
    "autocast",
    "available_devices",
    "cosine_decay",
    "default_loss",
    "derive_seed",
    "describe_device",
    "eval_batch_generator",
    "evaluate",
    "init_distributed",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "lr_at_step",
    "make_generator",
    "make_optimizer",
    "pick_device",
    "resolve_precision",
    "save_checkpoint",
    "seed_everything",
    "seed_torch",
    "shard_batch",
    "train",
    "train_batch_generator",
    "train_val_split",
    "unwrap_model",
    "warmup_factor",
]
