"""Chapter 8's training runs: a student three ways, and a sweep of sizes.

* ``ch08-student`` -- a GPT a quarter the size of chapter 4's (2 layers of width 64),
  600 AdamW steps with chapter 4's settings;
* ``ch08-student-kd`` -- the same, distilled from ``ch04-gpt`` (its predictions at
  temperature 2, weight 0.5), for the same steps;
* ``ch08-student-muon`` -- the same student trained with Muon for its weight matrices
  for the *same wall-clock time* as ``ch08-student``: a Muon step costs more (five
  Newton-Schulz iterations per matrix), so it takes ``600 * adamw_ms / muon_ms``
  steps;
* ``ch08-size-{16,32,48,64,96,128}`` -- 2-layer GPTs of those widths, each trained for
  the steps that fit :data:`SWEEP_BUDGET_S` seconds of one CPU thread: the size sweep.

Step counts come from step times measured side by side on one machine and recorded in
:data:`STEP_TIMES`: data, so that the equal-time comparisons need no clock at run time
and give the same models everywhere. Each recipe has a ``-gpu`` twin (:func:`recipe_for`
picks by device): the same runs, with ``ch04-gpt-gpu`` as the teacher; GPU step times
are not recorded yet, so on a GPU the equal-time step counts are the CPU's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...charlm import shakespeare_batches
from ...compression.distill import DistillationLoss
from ...models.gpt import GPT, GPTConfig
from ...training import History, TrainConfig, train
from ..loader import load
from ..recipe import Recipe, register
from . import GPT_CODE

__all__ = ["STEP_TIMES", "SIZES", "SWEEP_BUDGET_S", "recipe_for", "sweep_steps"]

DATA = ("tinyshakespeare/input.txt",)

#: CPU time of one training step (forward, backward, optimizer) on one thread, batch 32
#: of 64 characters, measured side by side in interleaved rounds (medians). Recorded
#: data: the step counts below follow from them.
STEP_TIMES: dict[str, Any] = {
    "machine": "2-core AMD EPYC (x86-64, AVX-512 BF16), 1 thread, torch 2.13",
    "adamw_ms": 74.0,  # ch04-gpt's shape: 2 layers of width 128
    "muon_ms": 90.6,
    "student_ms": 26.6,  # width 64
    # Muon at width 64 cost 1.125 times the AdamW step (30.4 against 27.0 ms in a
    # second run), scaled here to the first run's AdamW time.
    "student_muon_ms": 29.9,
    "student_kd_ms": 51.9,  # the teacher's forward pass comes on top
    # Width 16 from a third run (7.15 ms, beside 74.7 ms for width 128).
    "width_ms": {16: 7.15, 32: 11.9, 48: 17.4, 64: 26.6, 96: 47.4, 128: 74.0},
}

#: Seconds of training each model of the size sweep gets on one CPU thread.
SWEEP_BUDGET_S = 6.0
SIZES = (16, 32, 48, 64, 96, 128)


def sweep_steps(width: int) -> int:
    """Steps of the size-sweep model of ``width`` that fit :data:`SWEEP_BUDGET_S`."""
    return round(SWEEP_BUDGET_S * 1000 / STEP_TIMES["width_ms"][width])


def _gpt(width: int) -> dict[str, Any]:
    """A 2-layer character GPT of ``width`` (heads of 32 or 16), context 64."""
    heads = width // 32 if width % 32 == 0 else width // 16
    return dict(
        vocab_size=65,
        block_size=64,
        n_layer=2,
        n_head=heads,
        d_model=width,
        d_ff=4 * width,
        dropout=0.0,
    )


def _train(
    steps: int, warmup: int, evals: int = 6, batches: int = 20
) -> dict[str, Any]:
    """AdamW settings shared with ch04-gpt (peak 6e-3, cosine to a tenth), with
    ``evals`` evaluations of ``batches`` batches."""
    return dict(
        max_steps=steps,
        lr=6e-3,
        min_lr=6e-4,
        warmup_steps=warmup,
        betas=[0.9, 0.99],
        weight_decay=0.1,
        grad_clip=1.0,
        eval_every=max(steps // evals, 1),
        eval_batches=batches,
        log_every=10,
        precision="float32",
    )


_STUDENT_STEPS = 600
_STUDENT_MUON_STEPS = round(
    _STUDENT_STEPS * STEP_TIMES["student_ms"] / STEP_TIMES["student_muon_ms"]
)


CONFIGS: dict[str, dict[str, Any]] = {
    "ch08-student": {
        "model": _gpt(64),
        "batch_size": 32,
        "train": _train(_STUDENT_STEPS, 50),
    },
    "ch08-student-muon": {
        "model": _gpt(64),
        "batch_size": 32,
        "train": {
            **_train(_STUDENT_MUON_STEPS, 50),
            "optimizer": "muon",
            "muon_lr": 0.03,
        },
    },
    "ch08-student-kd": {
        "model": _gpt(64),
        "batch_size": 32,
        "train": _train(_STUDENT_STEPS, 50),
        "teacher": "ch04-gpt",
        "temperature": 2.0,
        "alpha": 0.5,
    },
    **{
        f"ch08-size-{w}": {
            "model": _gpt(w),
            "batch_size": 32,
            "train": _train(sweep_steps(w), sweep_steps(w) // 10, evals=4, batches=8),
        }
        for w in SIZES
    },
}


def build(config: dict[str, Any]) -> GPT:
    """The untrained GPT of a config."""
    return GPT(GPTConfig(**config["model"]))


def fit(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Train on Tiny Shakespeare's 90/10 split; with a ``teacher``, distil from it."""
    block_size = config["model"]["block_size"]
    _, batches = shakespeare_batches(block_size, config["batch_size"])
    loss_fn = None
    if "teacher" in config:
        teacher, _ = load(config["teacher"], device=device)
        loss_fn = DistillationLoss(teacher, config["temperature"], config["alpha"])
    settings = TrainConfig(**config["train"], seed=seed, device=str(device))
    history = train(model, batches, settings, loss_fn=loss_fn)
    metrics = {
        "val_loss": history.val_loss[-1],
        "train_loss": history.eval_train_loss[-1],
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return history, metrics


def _register(name: str, config: dict[str, Any], about: str) -> Recipe:
    teacher = config.get("teacher")
    return register(
        Recipe(
            name=name,
            build=build,
            fit=fit,
            config=config,
            data=DATA,
            seed=0,
            code=(*GPT_CODE, "lm_course.compression.distill"),
            needs=(teacher,) if teacher else (),
            description=about,
        )
    )


def _gpu(config: dict[str, Any]) -> dict[str, Any]:
    """The GPU twin: the same run (a teacher becomes the GPU's chapter 4 model)."""
    if "teacher" in config:
        return {**config, "teacher": config["teacher"] + "-gpu"}
    return config


RECIPES: dict[str, Recipe] = {}
for _name, _config in CONFIGS.items():
    if _name.endswith("-gpu"):
        continue
    _about = f"Chapter 8: {_name.removeprefix('ch08-')}."
    RECIPES[_name] = _register(_name, _config, _about)
    _gpu_name = _name + "-gpu"
    RECIPES[_gpu_name] = _register(
        _gpu_name, CONFIGS.get(_gpu_name, _gpu(_config)), _about + " (GPU)"
    )


def recipe_for(name: str, device: torch.device | str) -> str:
    """The recipe for ``name`` (e.g. ``"muon"``, ``"size-64"``) on ``device``."""
    full = f"ch08-{name}"
    if full not in RECIPES:
        known = sorted(n.removeprefix("ch08-") for n in RECIPES if "-gpu" not in n)
        raise ValueError(f"unknown chapter 8 recipe {name!r}; known: {known}")
    return full + ("-gpu" if torch.device(device).type == "cuda" else "")
