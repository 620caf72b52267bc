"""Named training recipes for the character-level GPT on Tiny Shakespeare.

``reference-cpu`` is the well-known small CPU configuration (4 layers, 4 heads, width
128, context 64, batch 12, 2,000 steps, no dropout) that the benchmark measures
throughput on. ``cpu`` is the course's default CPU recipe, tuned to learn as much as
possible in the same wall-clock time. ``gpu`` is for a CUDA machine (bf16 autocast,
fused AdamW, torch.compile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A model shape plus a training recipe; ``vocab_size`` comes from the tokenizer."""

    name: str
    description: str
    model: dict[str, Any]
    batch_size: int
    train: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="reference-cpu",
            description="The well-known small CPU configuration, to measure speed.",
            model=dict(block_size=64, n_layer=4, n_head=4, d_model=128, dropout=0.0),
            batch_size=12,
            train=dict(
                max_steps=2000,
                lr=1e-3,
                min_lr=1e-4,
                warmup_steps=0,
                betas=(0.9, 0.99),
                weight_decay=0.1,
                grad_clip=1.0,
            ),
        ),
        Preset(
            name="cpu",
            description="The course's default CPU recipe (about 2 minutes on 2 cores).",
            # In a fixed wall-clock budget on a CPU, a shallower model that takes more
            # steps learns more: measured against 3 and 4 layers, wider MLPs and bigger
            # batches.
            model=dict(block_size=64, n_layer=2, n_head=4, d_model=128, dropout=0.0),
            batch_size=32,
            train=dict(
                max_steps=1600,
                lr=6e-3,
                min_lr=6e-4,
                warmup_steps=100,
                betas=(0.9, 0.99),
                weight_decay=0.1,
                grad_clip=1.0,
            ),
        ),
        Preset(
            name="gpu",
            description="A CUDA recipe: 6 layers, width 384, context 256, bf16.",
            model=dict(block_size=256, n_layer=6, n_head=6, d_model=384, dropout=0.2),
            batch_size=64,
            train=dict(
                max_steps=2500,
                lr=2e-3,
                min_lr=2e-4,
                warmup_steps=100,
                betas=(0.9, 0.99),
                weight_decay=0.1,
                grad_clip=1.0,
                compile=True,
                precision="auto",
                device="cuda",
            ),
        ),
        Preset(
            name="tiny",
            description="A seconds-long run for smoke tests and the command line.",
            model=dict(block_size=32, n_layer=2, n_head=2, d_model=32, dropout=0.0),
            batch_size=8,
            train=dict(max_steps=30, lr=3e-3, warmup_steps=5),
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name, with a clear error listing the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None
