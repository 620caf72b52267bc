"""One run of :func:`~.trainer.train`: the record of its state that the loop's steps
update (:class:`Run`), and everything that happens before the first step: the checks of
the arguments, the run folder's lock, seeding, resuming from a checkpoint."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import load_checkpoint
from .config import TRAJECTORY_FIELDS, History, TrainConfig
from .device import describe_device, seed_everything
from .distributed import DistInfo, from_rank_zero
from .evaluation import GetBatch, LossFn, default_loss
from .guards import FiniteGuard, likely_causes
from .optimizer import make_optimizer
from .runfolder import latest_checkpoint, lock_run_folder

# The run's clock, in seconds. One name for every time the trainer reads, so a test can
# replace it with a clock of its own.
clock = time.perf_counter

# How far up the stack a warning points: past these helpers, at the caller of train().
_CALLER_OF_TRAIN = 5


@dataclass
class Run:
    """The state of one call to :func:`train`: what the loop's steps read and update."""

    config: TrainConfig
    model: nn.Module  # the plain model: what is saved
    step_model: nn.Module  # what trains: compiled and/or wrapped for several processes
    forward_model: nn.Module  # what evaluates: compiled, never DDP-wrapped
    optimizer: torch.optim.Optimizer
    get_batch: GetBatch
    device: torch.device
    dtype: torch.dtype  # the forward pass's precision, resolved once
    info: DistInfo
    run_dir: Path | None
    guard: FiniteGuard
    history: History
    step: int = 0  # optimizer steps completed
    last_saved: int = 0
    last_saved_path: Path | None = None  # the checkpoint of step last_saved
    tokens_seen: int | None = 0
    seconds_before: float = 0.0  # training time of earlier calls (a resumed run)
    warmup_end_s: float = 0.0  # when warmup ended, for the time-based schedule
    loss_fn: LossFn = default_loss
    meta: dict[str, Any] = field(default_factory=dict)
    resumed_from: Path | None = None  # the checkpoint the run continues
    started: float = field(default_factory=lambda: clock())
    # Tokens since the last log entry, and when it was: for tokens per second.
    window_start: float = field(default_factory=lambda: clock())
    window_tokens: int = 0
    postfix: dict[str, str] = field(default_factory=dict)  # for the progress bar
    clock_reading: float = 0.0  # elapsed seconds when finished() last read the clock

    @property
    def saves(self) -> bool:
        """True for the one process that writes checkpoints (when there is a folder)."""
        return self.run_dir is not None and self.info.is_main

    def now(self) -> float:
        """The run's clock (seconds; only differences mean something)."""
        return clock()

    def elapsed(self) -> float:
        """Seconds of training so far, across resumes."""
        return self.seconds_before + clock() - self.started

    def count(self, tokens: int | None) -> None:
        """Add a step's tokens (None: the batches do not hold token ids)."""
        if self.tokens_seen is None or tokens is None:
            self.tokens_seen = None
            return
        self.tokens_seen += tokens
        self.window_tokens += tokens

    def checkpoint_state(self) -> dict[str, Any]:
        """What ``state.json`` keeps beside the weights, to resume exactly."""
        counters = {
            "tokens_seen": self.tokens_seen,
            "elapsed_seconds": self.elapsed(),
            "warmup_end_s": self.warmup_end_s,
        }
        return {
            "config": self.config.to_dict(),
            "history": self.history.to_dict(),
            "meta": self.meta,
            "counters": counters,
        }

    def finished(self) -> bool:
        """True once ``max_steps`` steps are done or the time budget is used up.

        With a budget this reads the clock into :attr:`clock_reading`, the elapsed time
        the next step's learning rate follows (rank 0's, with several processes).
        """
        limit, budget = self.config.max_steps, self.config.time_budget_s
        if limit is not None and self.step >= limit:
            return True
        if budget is None:
            return False
        self.clock_reading = from_rank_zero(self.elapsed(), self.info, self.device)
        return self.clock_reading >= budget


@contextlib.contextmanager
def run_folder(config: TrainConfig, info: DistInfo) -> Iterator[Path | None]:
    """The locked run folder (only the process that writes locks it), or None."""
    if config.checkpoint_dir is None:
        yield None
    elif not info.is_main:
        yield Path(config.checkpoint_dir)
    else:
        with lock_run_folder(config.checkpoint_dir) as run_dir:
            yield run_dir


def prepare(
    model: nn.Module,
    get_batch: GetBatch,
    config: TrainConfig,
    device: torch.device,
    dtype: torch.dtype,
    info: DistInfo,
    run_dir: Path | None,
    resume: bool,
) -> Run:
    """Seed, place the model, build the optimizer, resume from a checkpoint if any."""
    seed_everything(config.seed)
    if device.type == "cpu" and config.flush_denormal:
        torch.set_flush_denormal(True)
    model.to(device)
    optimizer = make_optimizer(model, config, device)
    found = latest_checkpoint(run_dir) if resume and run_dir is not None else None
    state = load_checkpoint(found, model, optimizer) if found is not None else {}
    forward_model = torch.compile(model) if config.compile else model
    step_model = forward_model
    if info.enabled:  # after loading: DDP copies rank 0's weights to the others
        device_ids = [device.index] if device.type == "cuda" else None
        step_model = DistributedDataParallel(forward_model, device_ids=device_ids)
    precision = str(dtype).removeprefix("torch.")
    counters = state.get("counters", {})
    run = Run(
        config=config,
        model=model,
        step_model=step_model,
        forward_model=forward_model,
        optimizer=optimizer,
        get_batch=get_batch,
        device=device,
        dtype=dtype,
        info=info,
        run_dir=run_dir,
        guard=FiniteGuard(
            device, info, likely_causes(config.lr, precision, config.grad_clip)
        ),
        history=History.from_dict(state.get("history", {})),
        step=state.get("step", 0),
        last_saved=state.get("step", 0),
        last_saved_path=found,
        tokens_seen=counters.get("tokens_seen", 0),
        seconds_before=counters.get("elapsed_seconds", 0.0),
        warmup_end_s=counters.get("warmup_end_s", 0.0),
        resumed_from=found,
    )
    run.history.device, run.history.precision = describe_device(device), precision
    run.history.start_step = run.step
    if found is not None:
        report_resume(found, state, config, info, finished=run.finished())
    return run


# --- checks and messages -------------------------------------------------------


def check_arguments(
    model: Any, get_batch: Any, config: Any, loss_fn: Any, meta: Any, files: Any
) -> None:
    """Refuse wrong arguments to ``train`` before anything is computed or written."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(get_batch):
        raise TypeError(
            "get_batch must be a function (split, generator) -> tuple of tensors, "
            f"e.g. an LMBatches; got {type(get_batch).__name__}"
        )
    if not isinstance(config, TrainConfig):
        raise TypeError(
            "config must be a TrainConfig, e.g. TrainConfig(max_steps=100); got "
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
            "meta must be JSON-serialisable (numbers, strings, lists, dicts), since it "
            f"is stored in every checkpoint's state.json: {error}"
        ) from None
    if files is not None:
        if not isinstance(files, Mapping) or not all(
            isinstance(name, str) and callable(writer) for name, writer in files.items()
        ):
            raise TypeError(
                "files must map file names to functions that write them, e.g. "
                "{'tokenizer.json': tokenizer.save}"
            )
        if config.checkpoint_dir is None:
            raise ValueError("files are written into checkpoint_dir: set one")


def report_resume(
    found: Path,
    state: dict[str, Any],
    config: TrainConfig,
    info: DistInfo,
    *,
    finished: bool,
) -> None:
    """Say where the run continues from, or that there is nothing left to train."""
    step = state["step"]
    if finished:
        if info.is_main:
            warnings.warn(
                _nothing_to_train(found, state, config),
                stacklevel=_CALLER_OF_TRAIN - 1,
            )
        return
    _warn_if_config_changed(state.get("config", {}), config, found)
    if info.is_main and config.progress:
        of = "" if config.max_steps is None else f" of {config.max_steps}"
        print(f"Resuming from {found} (step {step}{of}).")


def _nothing_to_train(found: Path, state: dict[str, Any], config: TrainConfig) -> str:
    step = state["step"]
    if config.max_steps is not None and step >= config.max_steps:
        done = f"{step} steps, and max_steps={config.max_steps}"
        more = "a larger max_steps"
    else:
        seconds = state.get("counters", {}).get("elapsed_seconds", 0.0)
        done = f"{seconds:.1f} s of training, and time_budget_s={config.time_budget_s}"
        more = "a larger time_budget_s"
    return (
        f"nothing to train: the checkpoint {found} has already done {done}; nothing "
        f"was trained or saved. Ask for {more} to continue it, or use a new "
        "checkpoint_dir to start over"
    )


def _warn_if_config_changed(
    saved: dict[str, Any], config: TrainConfig, path: Path
) -> None:
    current = config.to_dict()
    changes = [
        f"{name} {saved[name]!r} -> {current[name]!r}"
        for name in TRAJECTORY_FIELDS
        if name in saved and saved[name] != current[name]
    ]
    if changes:
        warnings.warn(
            f"resuming from {path} with different settings ({', '.join(changes)}); "
            "training continues, but will not match a run made with either setting "
            "throughout",
            stacklevel=_CALLER_OF_TRAIN,
        )
