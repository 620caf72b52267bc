"""The training loop, written out by hand.

The trainer knows nothing about any particular model. It needs three things:

* ``model``: any ``nn.Module``;
* ``get_batch(split, generator) -> tuple of tensors``: one *global* micro-batch on the CPU,
  drawn only from ``generator`` (the trainer moves it to the device);
* ``loss_fn(model, batch) -> scalar tensor``: by default :func:`default_loss`, which calls
  ``model(*batch)`` and takes ``out[1]`` when the model returns a tuple or list (the course's
  models return ``(logits, loss, ...)``), else ``out`` itself.

One optimizer step, as the loop below spells it out:

1. set the learning rate from the schedule (a pure function of the step);
2. for each of ``grad_accum`` micro-batches: forward, ``(loss / grad_accum).backward()``;
   gradients add up in ``.grad``, so k micro-batches of b equal one batch of k * b;
3. clip the gradient norm, then let AdamW update the weights.

Reproducibility is built in: the data of step ``s``, micro-step ``m`` comes from a generator
seeded with ``(seed, s, m)``, and PyTorch's global generator (dropout) is reseeded from
``(seed, s)`` before every step. A run resumed from a checkpoint therefore draws exactly
the batches and dropout masks the uninterrupted run would have drawn, and on the same
machine with the same number of threads ends with bit-identical weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..progress import progress, progress_enabled
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .device import (
    PRECISIONS,
    autocast,
    derive_seed,
    describe_device,
    make_generator,
    pick_device,
    resolve_precision,
    seed_everything,
    seed_torch,
)
from .distributed import (
    DistInfo,
    all_reduce_mean,
    cleanup_distributed,
    device_for_rank,
    init_distributed,
    shard_batch,
)
from .schedule import SCHEDULES, lr_at_step

Batch = tuple[Tensor, ...]
GetBatch = Callable[[str, torch.Generator], Batch]
LossFn = Callable[[nn.Module, Batch], Tensor]

# Tags that keep the random streams for different purposes apart in derive_seed.
_TRAIN_DATA, _EVAL_DATA, _DROPOUT = 1, 2, 3


# --- configuration ---------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"TrainConfig.{name} must be an integer, got {value!r}{hint}")
    if value < minimum:
        raise ValueError(f"TrainConfig.{name} must be >= {minimum}, got {value}{hint}")


def _check_number(
    name: str, value: Any, minimum: float, *, allow_equal: bool = True
) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
    ):
        raise TypeError(f"TrainConfig.{name} must be a number, got {value!r}")
    if value < minimum or (value == minimum and not allow_equal):
        relation = ">=" if allow_equal else ">"
        raise ValueError(
            f"TrainConfig.{name} must be {relation} {minimum}, got {value}"
        )


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"TrainConfig.{name} must be True or False, got {value!r}")


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained. Checked when created.

    Args:
        max_steps: optimizer steps to train for (in total, counting resumed steps).
        lr: peak learning rate, reached after warmup.
        min_lr: learning rate at the end of the cosine schedule; ``None`` means ``lr / 10``.
        warmup_steps: steps of linear warmup from ``lr / warmup_steps`` to ``lr``.
        schedule: ``"cosine"`` (decay to ``min_lr``) or ``"constant"`` (stay at ``lr``).
        weight_decay: AdamW decay for weight matrices and embeddings (tensors with 2 or more
            dimensions); biases and normalisation gains are never decayed.
        betas: AdamW's moving-average factors for the gradient and its square.
        grad_clip: largest allowed global gradient norm; ``None`` or 0 turns clipping off.
        grad_accum: micro-batches per optimizer step (effective batch = grad_accum x batch).
        eval_every: evaluate every this many steps; 0 means only at the end.
        eval_batches: batches per evaluation (the same fixed batches every time); 0 turns
            evaluation off.
        log_every: record the training loss every this many steps (and at the last step).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a name such as ``"cpu"``, ``"cuda:0"``.
        precision: ``"auto"`` (bfloat16 autocast on a CUDA GPU that supports it, float32
            elsewhere), ``"float32"`` or ``"bfloat16"``.
        compile: run the model through ``torch.compile`` (worth it on a GPU; slow to start).
        seed: the seed every random choice (batches, dropout) is derived from.
        checkpoint_dir: folder for checkpoints; ``None`` saves nothing.
        checkpoint_every: save every this many steps; 0 saves only at the end (and when
            interrupted with Ctrl-C).
        keep_checkpoints: how many checkpoints to keep, newest first; ``None`` keeps all.
        progress: show a progress bar (``LM_COURSE_PROGRESS=0`` hides it everywhere).
        flush_denormal: on the CPU, treat tiny "denormal" floats as zero; they are very slow
            on CPUs and appear late in training. Note that this is a process-wide setting.
    """

    max_steps: int
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    eval_every: int = 0
    eval_batches: int = 10
    log_every: int = 10
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    seed: int = 1337
    checkpoint_dir: str | os.PathLike[str] | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int | None = 2
    progress: bool = True
    flush_denormal: bool = True

    def __post_init__(self) -> None:
        _check_int("max_steps", self.max_steps, 1)
        _check_number("lr", self.lr, 0.0, allow_equal=False)
        if self.min_lr is not None:
            _check_number("min_lr", self.min_lr, 0.0)
            if self.min_lr > self.lr:
                raise ValueError(
                    f"TrainConfig.min_lr={self.min_lr} is above lr={self.lr}; the schedule "
                    "decays from lr down to min_lr, so choose min_lr <= lr (or None for lr/10)"
                )
        _check_int("warmup_steps", self.warmup_steps, 0)
        if self.warmup_steps > self.max_steps:
            raise ValueError(
                f"TrainConfig.warmup_steps={self.warmup_steps} exceeds max_steps="
                f"{self.max_steps}; use at most max_steps warmup steps (often 1-10% of them)"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        _check_number("weight_decay", self.weight_decay, 0.0)
        if (
            not isinstance(self.betas, (tuple, list))
            or len(self.betas) != 2
            or not all(
                isinstance(b, (int, float))
                and not isinstance(b, bool)
                and 0.0 <= b < 1.0
                for b in self.betas
            )
        ):
            raise ValueError(
                f"TrainConfig.betas must be two numbers in [0, 1), e.g. (0.9, 0.95), "
                f"got {self.betas!r}"
            )
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, 0.0)
        _check_int("grad_accum", self.grad_accum, 1)
        _check_int("eval_every", self.eval_every, 0, " (0 evaluates only at the end)")
        _check_int("eval_batches", self.eval_batches, 0, " (0 turns evaluation off)")
        _check_int("log_every", self.log_every, 1)
        if not isinstance(self.device, str):
            raise TypeError(
                f"TrainConfig.device must be a string such as 'auto', 'cpu' or 'cuda', "
                f"got {self.device!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        _check_bool("compile", self.compile)
        _check_int("seed", self.seed, 0)
        if self.checkpoint_dir is not None and not isinstance(
            self.checkpoint_dir, (str, os.PathLike)
        ):
            raise TypeError(
                f"TrainConfig.checkpoint_dir must be a path or None, got {self.checkpoint_dir!r}"
            )
        _check_int(
            "checkpoint_every", self.checkpoint_every, 0, " (0 saves only at the end)"
        )
        if self.checkpoint_every > 0 and self.checkpoint_dir is None:
            raise ValueError(
                f"TrainConfig.checkpoint_every={self.checkpoint_every} needs somewhere to save: "
                "set checkpoint_dir, or use checkpoint_every=0"
            )
        if self.keep_checkpoints is not None:
            _check_int(
                "keep_checkpoints", self.keep_checkpoints, 1, " (None keeps all)"
            )
        _check_bool("progress", self.progress)
        _check_bool("flush_denormal", self.flush_denormal)

    @property
    def final_lr(self) -> float:
        """The learning rate the cosine schedule ends at: ``min_lr``, or ``lr / 10``."""
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based) under this config."""
        return lr_at_step(
            step,
            max_steps=self.max_steps,
            lr=self.lr,
            min_lr=self.final_lr,
            warmup_steps=self.warmup_steps,
            schedule=self.schedule,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (paths become strings, tuples lists)."""
        data = asdict(self)
        data["betas"] = list(self.betas)
        if self.checkpoint_dir is not None:
            data["checkpoint_dir"] = str(self.checkpoint_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict`'s output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown TrainConfig fields {unknown}; known: {sorted(known)}"
            )
        return cls(**data)


# --- what a run records ----------------------------------------------------------------


@dataclass
class History:
    """What happened during training, as plain lists ready for plotting.

    ``steps[i]`` is the number of completed optimizer steps at the i-th log entry, and
    ``train_loss``, ``lr``, ``grad_norm``, ``tokens_seen``, ``elapsed`` (seconds since the
    run began, across resumes) and ``tokens_per_sec`` are aligned with it. ``tokens_seen``
    and ``tokens_per_sec`` are ``None`` when the batch's first tensor is not integer token
    ids. ``eval_steps`` aligns ``val_loss`` and ``eval_train_loss``, each measured on the
    same fixed batches every time.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    tokens_seen: list[int | None] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    tokens_per_sec: list[float | None] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    eval_train_loss: list[float] = field(default_factory=list)
    device: str = ""
    precision: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a History from :meth:`to_dict`'s output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


# --- batches and losses ----------------------------------------------------------------


def default_loss(model: nn.Module, batch: Batch) -> Tensor:
    """``out = model(*batch)``; the loss is ``out[1]`` for a tuple/list output, else ``out``.

    The course's models are called as ``model(x, targets)`` and return
    ``(logits, loss, ...)``, which this handles. For anything else pass your own
    ``loss_fn(model, batch)``.
    """
    out = model(*batch)
    if isinstance(out, (tuple, list)):
        if len(out) < 2 or out[1] is None:
            raise ValueError(
                "the model returned a tuple without a loss at position 1; the default loss_fn "
                "calls model(*batch) and expects (logits, loss, ...). Make get_batch return "
                "the targets too, or pass loss_fn=lambda model, batch: ..."
            )
        return out[1]
    return out


def _check_loss(loss: Any, *, training: bool) -> Tensor:
    """Make sure ``loss_fn`` gave a scalar float tensor (that can be backpropagated)."""
    if not torch.is_tensor(loss) or loss.dim() != 0 or not loss.is_floating_point():
        shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
        raise ValueError(
            f"loss_fn must return a scalar float tensor (shape ()), got {shape}; if the model "
            "returns logits, pass loss_fn=lambda model, batch: F.cross_entropy(...)"
        )
    if training and not loss.requires_grad:
        raise ValueError(
            "the loss does not depend on any trainable parameter (loss.requires_grad is "
            "False); check that loss_fn computes it from the model's output"
        )
    return loss


def _fetch(get_batch: GetBatch, split: str, generator: torch.Generator) -> Batch:
    """Call ``get_batch`` and check that it returned a non-empty tuple of tensors."""
    batch = get_batch(split, generator)
    if (
        not isinstance(batch, (tuple, list))
        or not batch
        or not all(torch.is_tensor(item) for item in batch)
    ):
        raise TypeError(
            f"get_batch({split!r}, generator) must return a tuple of tensors such as (x, y), "
            f"got {type(batch).__name__}"
        )
    rows = {item.shape[0] if item.dim() else None for item in batch}
    if len(rows) != 1 or None in rows:
        raise ValueError(
            f"get_batch({split!r}, generator) returned tensors whose first (batch) dimensions "
            f"differ or are missing: shapes {[tuple(item.shape) for item in batch]}"
        )
    return tuple(batch)


def train_batch_generator(seed: int, step: int, micro_step: int) -> torch.Generator:
    """The generator the trainer hands ``get_batch`` for ``(step, micro_step)`` of training."""
    return make_generator(seed, _TRAIN_DATA, step, micro_step)


def eval_batch_generator(seed: int, split: str, index: int) -> torch.Generator:
    """The generator for evaluation batch ``index`` of ``split``, the same at every evaluation."""
    # crc32 gives the split name a stable number; Python's hash() changes between processes.
    return make_generator(seed, _EVAL_DATA, zlib.crc32(split.encode()), index)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return tuple(tensor.to(device, non_blocking=True) for tensor in batch)


def _count_tokens(batch: Batch) -> int | None:
    """Token ids in the batch's first tensor, or None if it does not hold integer ids."""
    first = batch[0]
    return None if first.is_floating_point() else first.numel()


def _device_of(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    get_batch: GetBatch,
    split: str = "val",
    *,
    batches: int = 10,
    seed: int = 1337,
    loss_fn: LossFn | None = None,
    precision: str = "float32",
    dist_info: DistInfo | None = None,
) -> float:
    """Mean loss of ``model`` over ``batches`` fixed batches of ``split``.

    The batches depend only on ``(seed, split, i)``, so every evaluation during a run (and
    in a resumed run) sees the same data and the points of a loss curve are comparable.
    Runs in ``model.eval()`` mode (no dropout) without building a graph, and restores the
    model's previous mode. With several processes, each evaluates its slice of every batch
    and the result is averaged over them.
    """
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches must be a positive integer, got {batches!r}")
    loss_fn = loss_fn or default_loss
    info = dist_info or DistInfo()
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        total = torch.zeros((), device=device)
        for index in range(batches):
            batch = _fetch(get_batch, split, eval_batch_generator(seed, split, index))
            local = _to_device(shard_batch(batch, info.rank, info.world_size), device)
            with autocast(device, precision):
                loss = _check_loss(loss_fn(model, local), training=False)
            total += loss.float()
        return all_reduce_mean(total / batches, info).item()
    finally:
        model.train(was_training)


# --- the optimizer ---------------------------------------------------------------------


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW with two parameter groups: decayed (dim >= 2) and not decayed (dim < 2).

    Weight decay pulls weights towards zero; that regularises matrices and embeddings, but
    for biases and normalisation gains (vectors) it only hurts. On CUDA and CPU the fused
    kernel updates all parameters in one pass (on a small model's CPU step it is about 5x
    faster than ``foreach``); elsewhere the ``foreach`` implementation batches them.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": params, "weight_decay": wd}
        for params, wd in [(decay, config.weight_decay), (no_decay, 0.0)]
        if params
    ]
    if not groups:
        raise ValueError(
            "the model has no trainable parameters (all have requires_grad=False)"
        )
    fused = device.type in ("cuda", "cpu")
    implementation = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, **implementation)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C until the block is done, then raise it.

    An optimizer step interrupted half way would leave some weights updated and others
    not; a checkpoint of that state could not resume exactly. Only the main thread can
    change signal handlers, so elsewhere this does nothing.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# --- the loop --------------------------------------------------------------------------


def _accumulate_gradients(
    model: nn.Module,
    get_batch: GetBatch,
    loss_fn: LossFn,
    config: TrainConfig,
    step: int,
    device: torch.device,
    info: DistInfo,
) -> tuple[Tensor, int | None]:
    """Forward and backward over ``grad_accum`` micro-batches; return (mean loss, tokens)."""
    total = torch.zeros((), device=device)
    tokens: int | None = 0
    for micro in range(config.grad_accum):
        batch = _fetch(
            get_batch, "train", train_batch_generator(config.seed, step, micro)
        )
        count = _count_tokens(batch)
        tokens = None if tokens is None or count is None else tokens + count
        local = _to_device(shard_batch(batch, info.rank, info.world_size), device)
        # DDP averages gradients across processes in every backward pass. Between
        # micro-steps that traffic is wasted, so only the last one synchronises.
        last = micro == config.grad_accum - 1
        sync = (
            model.no_sync() if info.enabled and not last else contextlib.nullcontext()
        )
        with sync:
            with autocast(device, config.precision):
                loss = _check_loss(loss_fn(model, local), training=True)
            # Dividing by grad_accum makes the summed gradients those of the mean loss.
            (loss / config.grad_accum).backward()
        total += loss.detach().float()
    return total / config.grad_accum, tokens


def _due(completed: int, every: int, is_last: bool) -> bool:
    """True after the last step and, when ``every`` > 0, after every ``every``-th step."""
    return is_last or (every > 0 and completed % every == 0)


# Settings that shape the trajectory: resuming with other values cannot match the
# uninterrupted run (changing max_steps, for instance, reshapes the cosine schedule).
_TRAJECTORY_FIELDS = (
    "max_steps",
    "lr",
    "min_lr",
    "warmup_steps",
    "schedule",
    "weight_decay",
    "betas",
    "grad_clip",
    "grad_accum",
    "seed",
)


def _warn_if_config_changed(
    saved: dict[str, Any], config: TrainConfig, path: Path
) -> None:
    current = config.to_dict()
    changes = [
        f"{name} {saved[name]!r} -> {current[name]!r}"
        for name in _TRAJECTORY_FIELDS
        if name in saved and saved[name] != current[name]
    ]
    if changes:
        warnings.warn(
            f"resuming from {path} with different settings ({', '.join(changes)}); training "
            "continues, but will not match a run made with either setting throughout",
            stacklevel=4,
        )


def _check_arguments(
    model: Any, get_batch: Any, config: Any, loss_fn: Any, meta: Any
) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(get_batch):
        raise TypeError(
            "get_batch must be a function (split, generator) -> tuple of tensors, e.g. an "
            f"LMBatches; got {type(get_batch).__name__}"
        )
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig, e.g. TrainConfig(max_steps=100); got "
            f"{type(config).__name__}"
        )
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(
            "loss_fn must be a function (model, batch) -> loss, or None; "
            f"got {type(loss_fn).__name__}"
        )
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"meta must be JSON-serialisable (numbers, strings, lists, dicts), since it is "
            f"stored in every checkpoint's state.json: {error}"
        ) from None


def train(
    model: nn.Module,
    get_batch: GetBatch,
    config: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    meta: dict[str, Any] | None = None,
    resume: bool = True,
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: any ``nn.Module``; it is moved to the chosen device and stays there.
        get_batch: ``(split, generator) -> tuple of tensors``, one global micro-batch.
        config: a :class:`TrainConfig`.
        loss_fn: ``(model, batch) -> scalar tensor``; default :func:`default_loss`.
        meta: JSON-serialisable notes stored in every checkpoint (e.g. the model's config,
            so it can be rebuilt before loading).
        resume: with a ``checkpoint_dir`` that already holds a checkpoint, continue from it.

    Under ``torchrun`` with several processes the model is wrapped in
    DistributedDataParallel and each process trains on its slice of every global batch
    (``torch.distributed.run`` on a GPU machine uses one GPU per process, ``cuda:LOCAL_RANK``).
    Ctrl-C saves a checkpoint (when ``checkpoint_dir`` is set) before stopping.

    Side effects beyond the model: Python's, NumPy's and PyTorch's global generators are
    seeded from ``config.seed``, and on the CPU ``flush_denormal`` is switched on for the
    whole process (see :class:`TrainConfig`).
    """
    _check_arguments(model, get_batch, config, loss_fn, meta)
    device = pick_device(config.device)
    precision = resolve_precision(device, config.precision)
    info = init_distributed(device.type)
    try:
        device = device_for_rank(device, info)
        return _train(
            model,
            get_batch,
            config,
            loss_fn or default_loss,
            meta or {},
            resume,
            device,
            str(precision).removeprefix("torch."),
            info,
        )
    finally:
        cleanup_distributed(info)


def _train(
    model: nn.Module,
    get_batch: GetBatch,
    config: TrainConfig,
    loss_fn: LossFn,
    meta: dict[str, Any],
    resume: bool,
    device: torch.device,
    precision: str,
    info: DistInfo,
) -> History:
    """The body of :func:`train`, once device and processes are set up."""
    was_training = model.training
    seed_everything(config.seed)
    if device.type == "cpu" and config.flush_denormal:
        torch.set_flush_denormal(True)
    model.to(device)
    optimizer = make_optimizer(model, config, device)

    history, start_step, counters = (
        History(),
        0,
        {"tokens_seen": 0, "elapsed_seconds": 0.0},
    )
    found = (
        latest_checkpoint(config.checkpoint_dir)
        if resume and config.checkpoint_dir
        else None
    )
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        start_step = state["step"]
        history = History.from_dict(state.get("history", {}))
        counters.update(state.get("counters", {}))
        _warn_if_config_changed(state.get("config", {}), config, found)
        if info.is_main and config.progress:
            print(f"Resuming from {found} (step {start_step} of {config.max_steps}).")
    history.device, history.precision = describe_device(device), precision

    forward_model = torch.compile(model) if config.compile else model
    step_model = forward_model
    if info.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        step_model = DistributedDataParallel(forward_model, device_ids=device_ids)

    run_start = time.perf_counter()
    tokens_seen: int | None = counters["tokens_seen"]
    window_start, window_tokens = run_start, 0

    def elapsed() -> float:
        return counters["elapsed_seconds"] + time.perf_counter() - run_start

    def save(step: int) -> Path:
        state = {
            "config": config.to_dict(),
            "history": history.to_dict(),
            "meta": meta,
            "counters": {"tokens_seen": tokens_seen, "elapsed_seconds": elapsed()},
        }
        return save_checkpoint(
            config.checkpoint_dir,
            step,
            model,
            optimizer,
            state=state,
            keep=config.keep_checkpoints,
        )

    completed = last_saved = start_step
    show = config.progress and info.is_main and progress_enabled()
    bar = progress(
        total=config.max_steps, initial=start_step, desc="training", disable=not show
    )
    postfix: dict[str, str] = {}
    try:
        for step in range(start_step, config.max_steps):
            lr = config.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # Dropout masks depend only on (seed, step, rank): a resumed run repeats them.
            seed_torch(derive_seed(config.seed, _DROPOUT, step, info.rank), device)
            step_model.train()
            loss, tokens = _accumulate_gradients(
                step_model, get_batch, loss_fn, config, step, device, info
            )
            # With clipping off, max_norm=inf still measures the norm (and scales by exactly 1).
            max_norm = config.grad_clip if config.grad_clip else math.inf
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            with _interrupts_held():
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                completed = step + 1
            bar.update(1)
            if tokens_seen is not None and tokens is not None:
                tokens_seen += tokens
                window_tokens += tokens
            else:
                tokens_seen = None
            is_last = completed == config.max_steps

            if _due(completed, config.log_every, is_last):
                # .item() waits for the GPU, so it happens only on logging steps.
                loss_value = all_reduce_mean(loss, info).item()
                now = time.perf_counter()
                history.steps.append(completed)
                history.train_loss.append(loss_value)
                history.lr.append(lr)
                history.grad_norm.append(grad_norm.item())
                history.tokens_seen.append(tokens_seen)
                history.elapsed.append(elapsed())
                history.tokens_per_sec.append(
                    None
                    if tokens_seen is None
                    else window_tokens / max(now - window_start, 1e-9)
                )
                window_start, window_tokens = now, 0
                postfix.update(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
                bar.set_postfix(postfix)

            if config.eval_batches and _due(completed, config.eval_every, is_last):
                losses = [
                    evaluate(
                        forward_model,
                        get_batch,
                        split,
                        batches=config.eval_batches,
                        seed=config.seed,
                        loss_fn=loss_fn,
                        precision=config.precision,
                        dist_info=info,
                    )
                    for split in ("val", "train")
                ]
                history.eval_steps.append(completed)
                history.val_loss.append(losses[0])
                history.eval_train_loss.append(losses[1])
                postfix["val"] = f"{losses[0]:.4f}"
                bar.set_postfix(postfix)

            if (
                config.checkpoint_dir is not None
                and info.is_main
                and _due(completed, config.checkpoint_every, is_last)
            ):
                save(completed)
                last_saved = completed
    except KeyboardInterrupt:
        if (
            config.checkpoint_dir is not None
            and info.is_main
            and completed != last_saved
        ):
            path = save(completed)
            print(
                f"\nInterrupted after step {completed}; saved {path}. "
                "Call train again with the same checkpoint_dir to continue."
            )
        raise
    finally:
        bar.close()
        model.train(was_training)
    return history
