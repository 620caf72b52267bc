"""The training loop, written out by hand.

The trainer knows nothing about any particular model. It needs three things:

* ``model``: any ``nn.Module``;
* ``get_batch(split, generator) -> tuple of tensors``: one *global* micro-batch on the
  CPU, drawn only from ``generator`` (the trainer moves it to the device);
* ``loss_fn(model, batch) -> scalar tensor``: by default
  :func:`~.evaluation.default_loss`, which calls ``model(*batch)`` and takes the loss
  from the ``(logits, loss, ...)`` the course's models return.

One optimizer step, as :func:`_train_step` spells it out:

1. set the learning rate from the schedule (a pure function of the step, or of the
   elapsed time when the run has a ``time_budget_s``);
2. for each of ``grad_accum`` micro-batches: forward, then
   ``(loss / grad_accum).backward()``; gradients add up in ``.grad``, so k
   micro-batches of b equal one batch of k * b;
3. clip the gradient norm, check that nothing diverged, let AdamW update the weights.

Reproducibility is built in: the data of step ``s``, micro-step ``m`` comes from a
generator seeded with ``(seed, s, m)``, and PyTorch's global generator (dropout) is
reseeded from ``(seed, s)`` before every step. A run resumed from a checkpoint therefore
draws exactly the batches and dropout masks the uninterrupted run would have drawn, and
on the same machine with the same number of threads ends with bit-identical weights.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..progress import progress, progress_enabled
from .checkpoint import NonFiniteCheckpoint, save_checkpoint
from .config import History, TrainConfig
from .device import autocast, derive_seed, pick_device, resolve_precision, seed_torch
from .distributed import (
    all_reduce_mean,
    cleanup_distributed,
    device_for_rank,
    init_distributed,
    shard_batch,
)
from .evaluation import (
    DROPOUT,
    GetBatch,
    LossFn,
    check_loss,
    count_tokens,
    default_loss,
    evaluate,
    fetch_batch,
    to_device,
    train_batch_generator,
)
from .guards import Terminated, TrainingDiverged, interrupts_held, stop_on_sigterm
from .optimizer import set_learning_rate
from .run import Run, check_arguments, prepare, run_folder
from .runfolder import clean_leftovers, write_run_files


def train(
    model: nn.Module,
    get_batch: GetBatch,
    config: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    meta: dict[str, Any] | None = None,
    resume: bool = True,
    files: Mapping[str, Callable[[Path], None]] | None = None,
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: any ``nn.Module``; it is moved to the chosen device and stays there.
        get_batch: ``(split, generator) -> tuple of tensors``, one global micro-batch.
        config: a :class:`TrainConfig`.
        loss_fn: ``(model, batch) -> scalar tensor``; default ``default_loss``.
        meta: JSON-serialisable notes stored in every checkpoint (e.g. the model's
            config, so it can be rebuilt before loading).
        resume: with a ``checkpoint_dir`` that already holds a checkpoint, continue
            from the newest intact one.
        files: ``name -> writer(path)`` for files the run folder keeps beside the
            checkpoints (such as the tokenizer); written once every check has passed.

    Under ``torchrun`` with several processes the model is wrapped in
    DistributedDataParallel and each process trains on its slice of every global batch
    (on a GPU machine one GPU per process, ``cuda:LOCAL_RANK``). While it runs, the
    ``checkpoint_dir`` is locked against a second run; Ctrl-C and SIGTERM save a
    checkpoint before stopping; a NaN or infinite loss stops it with
    :class:`TrainingDiverged` and is never saved.

    Side effects beyond the model: Python's, NumPy's and PyTorch's global generators are
    seeded from ``config.seed``, and on the CPU ``flush_denormal`` is switched on for
    the whole process (see :class:`TrainConfig`).
    """
    check_arguments(model, get_batch, config, loss_fn, meta, files)
    device = pick_device(config.device)
    dtype = resolve_precision(device, config.precision)
    info = init_distributed(device.type)
    try:
        device = device_for_rank(device, info)
        with run_folder(config, info) as run_dir, stop_on_sigterm():
            run = prepare(
                model, get_batch, config, device, dtype, info, run_dir, resume
            )
            run.loss_fn, run.meta = loss_fn or default_loss, meta or {}
            if run_dir is not None and info.is_main:
                clean_leftovers(run_dir)
                must_match = run.resumed_from is not None
                write_run_files(run_dir, files or {}, must_match=must_match)
            return _loop(run)
    finally:
        cleanup_distributed(info)


def _loop(run: Run) -> History:
    """Step until the step limit or the time budget is reached; log, evaluate, save."""
    config = run.config
    show = config.progress and run.info.is_main and progress_enabled()
    total = config.max_steps if config.time_budget_s is None else None
    bar = progress(total=total, initial=run.step, desc="training", disable=not show)
    was_training = run.model.training
    try:
        done = run.finished()
        while not done:
            lr = _set_learning_rate(run)
            loss, grad_norm = _train_step(run)
            bar.update(1)
            done = run.finished()
            if _due(run.step, config.log_every, done):
                _log(run, loss, grad_norm, lr, bar)
            if config.eval_batches and _due(run.step, config.eval_every, done):
                _evaluate(run, bar)
            if run.saves and _due(run.step, config.checkpoint_every, done):
                _save(run)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
        _save_on_interrupt(run, stop)
        raise
    finally:
        bar.close()
        run.model.train(was_training)
    return run.history


# --- the steps of the loop ------------------------------------------------------------


def _set_learning_rate(run: Run) -> float:
    """The schedule's rate for this step, given to the optimizer."""
    config = run.config
    if config.time_budget_s is None:
        lr = config.lr_at(run.step)
    else:  # the clock was read (the same on every rank) by run.finished()
        if run.step == config.warmup_steps and run.step > 0:
            run.warmup_end_s = run.clock_reading
        lr = config.lr_at(run.step, run.clock_reading, run.warmup_end_s)
    set_learning_rate(run.optimizer, lr)
    return lr


def _train_step(run: Run) -> tuple[Tensor, Tensor]:
    """One optimizer step: reseed dropout, accumulate gradients, clip, check, update."""
    config, step = run.config, run.step
    # Dropout masks depend only on (seed, step, rank): a resumed run repeats them.
    seed_torch(derive_seed(config.seed, DROPOUT, step, run.info.rank), run.device)
    run.step_model.train()
    loss, tokens = _accumulate_gradients(run)
    # With clipping off, max_norm=inf still measures the norm (and scales by exactly 1).
    max_norm = config.grad_clip if config.grad_clip else math.inf
    grad_norm = nn.utils.clip_grad_norm_(run.model.parameters(), max_norm)
    run.guard.observe(step + 1, loss, grad_norm)
    with interrupts_held():
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.step = step + 1
        run.count(tokens)
    return loss, grad_norm


def _accumulate_gradients(run: Run) -> tuple[Tensor, int | None]:
    """Forward and backward over ``grad_accum`` micro-batches: (mean loss, tokens)."""
    config, info = run.config, run.info
    total = torch.zeros((), device=run.device)
    tokens: int | None = 0
    for micro in range(config.grad_accum):
        generator = train_batch_generator(config.seed, run.step, micro)
        batch = fetch_batch(run.get_batch, "train", generator)
        count = count_tokens(batch)
        tokens = None if tokens is None or count is None else tokens + count
        local = to_device(shard_batch(batch, info.rank, info.world_size), run.device)
        # DDP averages gradients across processes in every backward pass. Between
        # micro-steps that traffic is wasted, so only the last one synchronises.
        last = micro == config.grad_accum - 1
        sync = contextlib.nullcontext()
        if info.enabled and not last:
            sync = run.step_model.no_sync()
        with sync:
            with autocast(run.device, run.dtype):
                loss = check_loss(run.loss_fn(run.step_model, local), training=True)
            # Dividing by grad_accum makes the summed gradients those of the mean loss.
            (loss / config.grad_accum).backward()
        total += loss.detach().float()
    return total / config.grad_accum, tokens


def _log(run: Run, loss: Tensor, grad_norm: Tensor, lr: float, bar: Any) -> None:
    """Record the loss (averaged over the processes) and the step's other numbers."""
    # .item() waits for the GPU, so it happens only on logging steps.
    loss_value = all_reduce_mean(loss, run.info).item()
    run.guard.logged(run.step, loss_value)
    now = run.now()
    history = run.history
    history.steps.append(run.step)
    history.train_loss.append(loss_value)
    history.lr.append(lr)
    history.grad_norm.append(grad_norm.item())
    history.tokens_seen.append(run.tokens_seen)
    history.elapsed.append(run.elapsed())
    history.tokens_per_sec.append(
        None
        if run.tokens_seen is None
        else run.window_tokens / max(now - run.window_start, 1e-9)
    )
    run.window_start, run.window_tokens = now, 0
    run.postfix.update(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
    bar.set_postfix(run.postfix)


def _evaluate(run: Run, bar: Any) -> None:
    """The mean loss on the fixed validation and training batches."""
    val, train_loss = (
        evaluate(
            run.forward_model,
            run.get_batch,
            split,
            batches=run.config.eval_batches,
            seed=run.config.seed,
            loss_fn=run.loss_fn,
            precision=run.dtype,
            dist_info=run.info,
        )
        for split in ("val", "train")
    )
    run.history.eval_steps.append(run.step)
    run.history.val_loss.append(val)
    run.history.eval_train_loss.append(train_loss)
    run.postfix["val"] = f"{val:.4f}"
    bar.set_postfix(run.postfix)


def _save(run: Run) -> Path:
    """Save a checkpoint of the step just completed; never one holding NaN."""
    run.guard.check()
    assert run.run_dir is not None
    try:
        path = save_checkpoint(
            run.run_dir,
            run.step,
            run.model,
            run.optimizer,
            state=run.checkpoint_state(),
            keep=run.config.keep_checkpoints,
        )
    except NonFiniteCheckpoint as error:
        raise TrainingDiverged(run.step, error.what, run.guard.causes) from None
    run.last_saved, run.last_saved_path = run.step, path
    return path


def _save_on_interrupt(run: Run, stop: KeyboardInterrupt) -> None:
    if not run.saves:
        return
    # A signal just after a save finds this step on disk already: report that file.
    path = _save(run) if run.step != run.last_saved else run.last_saved_path
    if path is None:  # stopped before the first step: nothing to keep
        return
    what = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
    print(
        f"\n{what}: stopped after step {run.step}; saved {path}. Call train again "
        "with the same checkpoint_dir to continue."
    )


def _due(completed: int, every: int, is_last: bool) -> bool:
    """True after the last step and, when ``every`` > 0, after every ``every``-th."""
    return is_last or (every > 0 and completed % every == 0)
