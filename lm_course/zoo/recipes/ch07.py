"""Chapter 7 (efficient attention, long context): small GPTs that differ in one choice.

Every recipe here trains the same small character-level GPT on Tiny Shakespeare with
the same data, steps and seed, changing one thing:

* ``ch07-pos-learned``, ``-sinusoidal``, ``-rope``, ``-alibi``: how positions enter
  (the chapter then reads them at 2, 4 and 8 times the trained context); the
  sinusoidal model also scales its token vectors by ``sqrt(d_model)``, as the original
  Transformer does, so that the fixed table does not drown them;
* ``ch07-gqa`` and ``ch07-mqa``: 2 key/value heads and 1 instead of 4 (RoPE positions,
  so ``ch07-pos-rope`` is their multi-head baseline).

Each has a CPU version (a few seconds to twenty on one thread) and a larger ``-gpu``
version; :func:`recipe_for` picks by device.
"""

from __future__ import annotations

from typing import Any

import torch

from ..recipe import Recipe, register
from . import GPT_CODE
from .tiny import build, fit  # the same character GPT and training loop

VARIANTS: dict[str, dict[str, Any]] = {
    "pos-learned": {"positional": "learned"},
    # The original Transformer multiplies token vectors by sqrt(d_model) next to its
    # sinusoidal table (entries up to 1); the course's embeddings start at 0.02.
    "pos-sinusoidal": {"positional": "sinusoidal", "scale_embeddings": True},
    "pos-rope": {"positional": "rope"},
    "pos-alibi": {"positional": "alibi"},
    "gqa": {"positional": "rope", "n_kv_head": 2},
    "mqa": {"positional": "rope", "n_kv_head": 1},
}

SIZES: dict[str, dict[str, Any]] = {
    "cpu": {
        "model": dict(
            vocab_size=65, block_size=64, n_layer=2, n_head=4, d_model=64, dropout=0.0
        ),
        "batch_size": 16,
        "train": dict(max_steps=400, lr=6e-3, warmup_steps=20, eval_batches=8),
    },
    "gpu": {
        "model": dict(
            vocab_size=65, block_size=128, n_layer=4, n_head=4, d_model=128, dropout=0.0
        ),
        "batch_size": 64,
        "train": dict(max_steps=2000, lr=2e-3, warmup_steps=100, eval_batches=20),
    },
}


def recipe_for(variant: str, device: torch.device | str) -> str:
    """The recipe name of ``variant`` (a key of :data:`VARIANTS`) for ``device``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    return f"ch07-{variant}" + ("-gpu" if torch.device(device).type == "cuda" else "")


def _register(variant: str, size: str) -> Recipe:
    base = SIZES[size]
    config = {**base, "model": {**base["model"], **VARIANTS[variant]}}
    suffix = "-gpu" if size == "gpu" else ""
    return register(
        Recipe(
            name=f"ch07-{variant}{suffix}",
            build=build,
            fit=fit,
            config=config,
            data=("tinyshakespeare/input.txt",),
            seed=0,
            code=(*GPT_CODE, "lm_course.zoo.recipes.tiny"),
            description=f"Chapter 7's small character GPT, {variant} ({size}).",
        )
    )


RECIPES = {
    (variant, size): _register(variant, size) for variant in VARIANTS for size in SIZES
}
