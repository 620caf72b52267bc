"""Training, independent of any model: a hand-written loop with checkpoints and DDP.

``train(model, get_batch, TrainConfig(...))`` is the entry point; ``LMBatches`` turns a
token stream into the ``get_batch`` it needs. Where to read what:

* :mod:`.trainer` — the loop, and its steps;
* :mod:`.run` — the record of a run's state, and what happens before the first step;
* :mod:`.config` — :class:`TrainConfig` (checked) and :class:`History`;
* :mod:`.evaluation` — ``get_batch``, ``loss_fn`` and :func:`evaluate`;
* :mod:`.optimizer` and :mod:`.schedule` — AdamW and its learning rate;
* :mod:`.guards` — divergence, Ctrl-C and SIGTERM;
* :mod:`.checkpoint` and :mod:`.runfolder` — saving, loading, the folder's lock;
* :mod:`.device`, :mod:`.distributed`, :mod:`.batches` — where and on what it runs.
"""

from .batches import LMBatches, train_val_split
from .checkpoint import (
    NonFiniteCheckpoint,
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
    unwrap_model,
)
from .config import History, TrainConfig
from .device import (
    autocast,
    available_devices,
    default_device,
    derive_seed,
    describe_device,
    make_generator,
    model_device,
    pick_device,
    resolve_precision,
    seed_everything,
    seed_torch,
)
from .distributed import DistInfo, init_distributed, shard_batch
from .evaluation import (
    default_loss,
    eval_batch_generator,
    evaluate,
    train_batch_generator,
)
from .guards import Terminated, TrainingDiverged
from .optimizer import make_optimizer
from .runfolder import DamagedCheckpoint, RunFolderBusy, RunFolderError
from .schedule import cosine_decay, lr_at_step, lr_at_time, warmup_factor
from .trainer import train

__all__ = [
    "DamagedCheckpoint",
    "DistInfo",
    "History",
    "LMBatches",
    "NonFiniteCheckpoint",
    "RunFolderBusy",
    "RunFolderError",
    "Terminated",
    "TrainConfig",
    "TrainingDiverged",
    "autocast",
    "available_devices",
    "cosine_decay",
    "default_device",
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
    "lr_at_time",
    "make_generator",
    "make_optimizer",
    "model_device",
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
