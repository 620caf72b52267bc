"""Learning-rate schedules: pure functions of the step number (or of the elapsed time).

Because the rate depends on nothing but the step, a resumed run recomputes exactly the
rate the uninterrupted run would have used; there is no scheduler object whose state
could be lost with a checkpoint.

Steps count from 0 (the first optimizer step). During ``warmup_steps`` the rate climbs
in a straight line to ``lr``, reaching it on step ``warmup_steps - 1``; starting from a
tiny rate keeps Adam's first, poorly estimated updates small. Then the cosine schedule
glides down to ``min_lr`` at step ``max_steps``, so the last steps take small, careful
steps.

A run with a wall-clock budget does not know how many steps it will get, so
:func:`lr_at_time` measures the progress of the cosine in seconds instead of steps.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant")


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Fraction of the full rate at ``step``: ``(step + 1) / warmup_steps``, up to 1."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


def cosine_decay(progress: float, lr: float, min_lr: float) -> float:
    """Half a cosine from ``lr`` (progress 0) down to ``min_lr`` (progress 1).

    ``progress`` outside [0, 1] is clamped, so steps past the end stay at ``min_lr``.
    """
    progress = min(max(progress, 0.0), 1.0)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def lr_at_step(
    step: int,
    *,
    max_steps: int,
    lr: float,
    min_lr: float,
    warmup_steps: int = 0,
    schedule: str = "cosine",
) -> float:
    """The learning rate for optimizer step ``step`` (0-based).

    * ``schedule="cosine"``: linear warmup, then cosine decay to ``min_lr`` at
      ``max_steps``;
    * ``schedule="constant"``: linear warmup, then ``lr`` for good.
    """
    decay_steps = max(max_steps - warmup_steps, 1)
    progress = (step - warmup_steps) / decay_steps
    return _lr(step, progress, lr, min_lr, warmup_steps, schedule)


def lr_at_time(
    step: int,
    elapsed_s: float,
    *,
    time_budget_s: float,
    lr: float,
    min_lr: float,
    warmup_steps: int = 0,
    warmup_end_s: float = 0.0,
    schedule: str = "cosine",
) -> float:
    """The learning rate for step ``step`` of a run with a wall-clock budget.

    Warmup still counts steps (its length is about the optimizer's first updates, not
    about time). After it, the cosine's progress is the fraction of the time left after
    warmup that has passed, ``(elapsed_s - warmup_end_s) / (time_budget_s -
    warmup_end_s)``, so the rate reaches ``min_lr`` just as the budget runs out.
    """
    span = max(time_budget_s - warmup_end_s, 1e-9)
    progress = (elapsed_s - warmup_end_s) / span
    return _lr(step, progress, lr, min_lr, warmup_steps, schedule)


def _lr(
    step: int,
    progress: float,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    schedule: str,
) -> float:
    """Warmup by steps, then the schedule at ``progress`` (0 to 1) of its decay."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return lr * warmup_factor(step, warmup_steps)
    if schedule == "constant":
        return lr
    return cosine_decay(progress, lr, min_lr)
