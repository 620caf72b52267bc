"""What goes into a training run (:class:`TrainConfig`) and what comes out (History).

Every field of the config is checked when it is created, with the package's one wording
(:mod:`lm_course.checks`), so a wrong value stops the run before anything is computed or
written.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..checks import check_bool, check_choice, check_int, check_number, describe
from .device import PRECISIONS
from .schedule import SCHEDULES, lr_at_step, lr_at_time

OPTIMIZERS = ("adamw", "muon")

# Settings that shape the trajectory: resuming with other values cannot match the
# uninterrupted run (changing max_steps, for instance, reshapes the cosine schedule).
TRAJECTORY_FIELDS = (
    "max_steps",
    "time_budget_s",
    "lr",
    "min_lr",
    "warmup_steps",
    "schedule",
    "weight_decay",
    "betas",
    "grad_clip",
    "grad_accum",
    "seed",
    "optimizer",
    "muon_lr",
    "muon_momentum",
    "muon_weight_decay",
)


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained. Checked when created.

    Args:
        max_steps: optimizer steps to train for (in total, counting resumed steps).
        lr: peak learning rate, reached after warmup.
        min_lr: learning rate at the end of the cosine schedule; ``None`` means
            ``lr/10``.
        warmup_steps: steps of linear warmup from ``lr / warmup_steps`` to ``lr``.
        schedule: ``"cosine"`` (decay to ``min_lr``) or ``"constant"`` (stay at ``lr``).
        weight_decay: AdamW decay for weight matrices and embeddings (tensors with 2 or
            more dimensions); biases and normalisation gains are never decayed.
        betas: AdamW's moving-average factors for the gradient and its square.
        grad_clip: largest allowed global gradient norm; ``None`` or 0 turns clipping
            off.
        grad_accum: micro-batches per optimizer step (effective batch = grad_accum x
            batch).
        eval_every: evaluate every this many steps; 0 means only at the end.
        eval_batches: batches per evaluation (the same fixed batches every time); 0
            turns evaluation off.
        log_every: record the training loss every this many steps (and at the last
            step). On a GPU the check for a diverged (NaN) loss runs on these steps.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a name such as ``"cpu"``.
        precision: ``"auto"`` (bfloat16 autocast on a CUDA GPU that supports it, float32
            elsewhere), ``"float32"`` or ``"bfloat16"``.
        compile: run the model through ``torch.compile`` (worth it on a GPU; slow
            start).
        seed: the seed every random choice (batches, dropout) is derived from.
        checkpoint_dir: the run folder for checkpoints; ``None`` saves nothing.
        checkpoint_every: save every this many steps; 0 saves only at the end (and when
            interrupted with Ctrl-C or SIGTERM).
        keep_checkpoints: how many checkpoints to keep, newest first; ``None`` keeps
            all.
        progress: show a progress bar (``LM_COURSE_PROGRESS=0`` hides it everywhere).
        flush_denormal: on the CPU, treat tiny "denormal" floats as zero; they are very
            slow on CPUs and appear late in training. A process-wide setting.
        time_budget_s: a wall-clock limit in seconds. Training stops at the first step
            that ends past it, and the cosine schedule follows the elapsed time instead
            of the step count, so it reaches ``min_lr`` just as the time is up. The
            final evaluation and checkpoint come after it. ``max_steps`` may then be
            ``None`` (no step limit) or a cap. Such a run is not bit-reproducible: the
            learning rate of each step, and the number of steps, depend on how fast the
            machine is. A resumed run keeps the time already spent (saved in the
            checkpoint).
        optimizer: ``"adamw"``, or ``"muon"``: Muon (:mod:`.muon`) for the hidden
            weight matrices, AdamW (``lr``, ``betas``, ``weight_decay``) for
            embeddings, output layer, gains and biases.
        muon_lr: Muon's peak learning rate (same warmup and schedule as ``lr``).
        muon_momentum: Muon's momentum factor.
        muon_weight_decay: decoupled weight decay of the Muon matrices.
    """

    max_steps: int | None = None
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
    time_budget_s: float | None = None
    optimizer: str = "adamw"
    muon_lr: float = 0.05
    muon_momentum: float = 0.95
    muon_weight_decay: float = 0.0

    def __post_init__(self) -> None:
        name = "TrainConfig."
        if self.max_steps is None and self.time_budget_s is None:
            raise ValueError(
                "TrainConfig needs max_steps (a number of optimizer steps), "
                "time_budget_s (seconds of training), or both"
            )
        if self.max_steps is not None:
            check_int(name + "max_steps", self.max_steps, minimum=1)
        if self.time_budget_s is not None:
            check_number(
                name + "time_budget_s", self.time_budget_s, minimum=0, strict_min=True
            )
        check_number(name + "lr", self.lr, minimum=0, strict_min=True)
        if self.min_lr is not None:
            check_number(name + "min_lr", self.min_lr, minimum=0)
            if self.min_lr > self.lr:
                raise ValueError(
                    f"TrainConfig.min_lr={self.min_lr} is above lr={self.lr}; the "
                    "schedule decays from lr down to min_lr, so choose min_lr <= lr "
                    "(or None for lr/10)"
                )
        check_int(name + "warmup_steps", self.warmup_steps, minimum=0)
        if self.max_steps is not None and self.warmup_steps > self.max_steps:
            raise ValueError(
                f"TrainConfig.warmup_steps={self.warmup_steps} exceeds max_steps="
                f"{self.max_steps}; use at most max_steps warmup steps (often 1-10% "
                "of them)"
            )
        check_choice(name + "schedule", self.schedule, SCHEDULES)
        check_number(name + "weight_decay", self.weight_decay, minimum=0)
        self.betas = _checked_betas(self.betas)
        if self.grad_clip is not None:
            check_number(name + "grad_clip", self.grad_clip, minimum=0)
        check_int(name + "grad_accum", self.grad_accum, minimum=1)
        check_int(
            name + "eval_every",
            self.eval_every,
            minimum=0,
            hint=" (0 evaluates only at the end)",
        )
        check_int(
            name + "eval_batches",
            self.eval_batches,
            minimum=0,
            hint=" (0 turns evaluation off)",
        )
        check_int(name + "log_every", self.log_every, minimum=1)
        if not isinstance(self.device, str):
            raise TypeError(
                "TrainConfig.device must be a string such as 'auto', 'cpu' or 'cuda', "
                f"got {describe(self.device)}"
            )
        check_choice(name + "precision", self.precision, PRECISIONS)
        check_bool(name + "compile", self.compile)
        check_int(name + "seed", self.seed, minimum=0)
        if self.checkpoint_dir is not None and not isinstance(
            self.checkpoint_dir, str | os.PathLike
        ):
            raise TypeError(
                "TrainConfig.checkpoint_dir must be a path or None, got "
                f"{describe(self.checkpoint_dir)}"
            )
        check_int(
            name + "checkpoint_every",
            self.checkpoint_every,
            minimum=0,
            hint=" (0 saves only at the end)",
        )
        if self.checkpoint_every > 0 and self.checkpoint_dir is None:
            raise ValueError(
                f"TrainConfig.checkpoint_every={self.checkpoint_every} needs somewhere "
                "to save: set checkpoint_dir, or use checkpoint_every=0"
            )
        if self.keep_checkpoints is not None:
            check_int(
                name + "keep_checkpoints",
                self.keep_checkpoints,
                minimum=1,
                hint=" (None keeps all)",
            )
        check_bool(name + "progress", self.progress)
        check_bool(name + "flush_denormal", self.flush_denormal)
        check_choice(name + "optimizer", self.optimizer, OPTIMIZERS)
        check_number(name + "muon_lr", self.muon_lr, minimum=0, strict_min=True)
        check_number(
            name + "muon_momentum",
            self.muon_momentum,
            minimum=0,
            maximum=1,
            strict_max=True,
        )
        check_number(name + "muon_weight_decay", self.muon_weight_decay, minimum=0)

    @property
    def final_lr(self) -> float:
        """The learning rate the cosine schedule ends at: ``min_lr``, or ``lr / 10``."""
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def lr_at(
        self, step: int, elapsed_s: float | None = None, warmup_end_s: float = 0.0
    ) -> float:
        """The learning rate for optimizer step ``step`` (0-based) under this config.

        With a ``time_budget_s`` the rate also depends on ``elapsed_s``, the seconds
        trained so far, and ``warmup_end_s``, when warmup ended (see
        :func:`~lm_course.training.schedule.lr_at_time`).
        """
        common = {
            "lr": self.lr,
            "min_lr": self.final_lr,
            "warmup_steps": self.warmup_steps,
            "schedule": self.schedule,
        }
        if self.time_budget_s is None:
            assert self.max_steps is not None  # checked in __post_init__
            return lr_at_step(step, max_steps=self.max_steps, **common)
        if elapsed_s is None:
            raise ValueError(
                "with a time_budget_s the learning rate follows the elapsed time: "
                "pass elapsed_s"
            )
        return lr_at_time(
            step,
            elapsed_s,
            time_budget_s=self.time_budget_s,
            warmup_end_s=warmup_end_s,
            **common,
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
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown TrainConfig fields {unknown}; known: {sorted(known)}"
            )
        return cls(**data)


def _checked_betas(betas: Any) -> tuple[float, float]:
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(
            "TrainConfig.betas must be two numbers in [0, 1), e.g. (0.9, 0.95), got "
            f"{describe(betas)}"
        )
    return (
        check_number(
            "TrainConfig.betas[0]", betas[0], minimum=0, maximum=1, strict_max=True
        ),
        check_number(
            "TrainConfig.betas[1]", betas[1], minimum=0, maximum=1, strict_max=True
        ),
    )


@dataclass
class History:
    """What happened during training, as plain lists ready for plotting.

    ``steps[i]`` is the number of completed optimizer steps at the i-th log entry, and
    ``train_loss``, ``lr``, ``grad_norm``, ``tokens_seen``, ``elapsed`` (seconds since
    the run began, across resumes) and ``tokens_per_sec`` are aligned with it.
    ``tokens_seen`` and ``tokens_per_sec`` are ``None`` when the batch's first tensor is
    not integer token ids. ``eval_steps`` aligns ``val_loss`` and ``eval_train_loss``,
    each measured on the same fixed batches every time. ``start_step`` is the number of
    steps already done when the latest call to ``train`` began (0 for a fresh run), so
    ``start_step == steps[-1]`` means that call had nothing left to train.
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
    start_step: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a History from :meth:`to_dict`'s output; unknown keys are skipped."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
