"""Named training recipes for the character-level GPT on Tiny Shakespeare.

``reference-cpu`` is the well-known small CPU configuration (4 layers, 4 heads, width
128, context 64, batch 12, 2,000 steps, no dropout) that the benchmark measures
throughput on. ``cpu`` is the course's default CPU recipe, tuned to learn as much as
possible in the same wall-clock time (chapter 8 tells how; the trials are in
:data:`lm_course.speedrun.TRIALS`). ``gpu`` is for a CUDA machine (bf16 autocast,
fused AdamW, torch.compile).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Linux lists what the processor can do here; elsewhere (macOS, Windows) it is absent.
_CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def native_bf16_cpu() -> bool:
    """True when this CPU multiplies bfloat16 numbers in hardware (x86's AVX-512 BF16
    or AMX), read from ``/proc/cpuinfo``; False where that cannot be told.

    Without such instructions bfloat16 autocast on a CPU converts every product and is
    slower than float32; with them the benchmark's reference configuration trained
    about 1.4 times faster (2 threads; 1.5 times on one), at the same loss.
    """
    try:
        flags = set(_CPUINFO.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_precision() -> str:
    """The ``cpu`` recipe's precision: ``"bfloat16"`` on a CPU with bfloat16
    instructions (:func:`native_bf16_cpu`), else ``"float32"``."""
    return "bfloat16" if native_bf16_cpu() else "float32"


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
            # Tuned at equal CPU time against the reference (lm_course.speedrun.TRIALS):
            # a shallow model that takes many steps; Muon at 0.03 for the weight
            # matrices (AdamW at 6e-3 for embeddings and gains); bfloat16 autocast
            # where the CPU has bfloat16 instructions. Deeper, wider, smaller batches,
            # a higher Muon rate, a shorter warmup did not help.
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
                optimizer="muon",
                muon_lr=0.03,
                precision=cpu_precision(),
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
