"""The character-level GPT on Tiny Shakespeare, as the command line and benchmark use it.

This is glue between the data, the tokenizer, the model and the trainer: it holds no
concept of its own, only the choices that make a run reproducible (the split, the
tokenizer, where the run folder keeps what generation needs later).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .data import tiny_shakespeare
from .models.gpt import GPT, GPTConfig
from .presets import Preset
from .tokenizers import CharTokenizer
from .training import LMBatches, TrainConfig, train_val_split
from .training.checkpoint import STATE_FILE, latest_checkpoint, load_model_weights

TOKENIZER_FILE = "tokenizer.json"


def shakespeare_batches(
    block_size: int, batch_size: int
) -> tuple[CharTokenizer, LMBatches]:
    """Character tokenizer and random-window batches over a fixed 90/10 split of the text."""
    text = tiny_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer, LMBatches(
        train_val_split(ids, val_fraction=0.1), block_size, batch_size
    )


def build(
    preset: Preset, **train_overrides: Any
) -> tuple[GPT, CharTokenizer, LMBatches, TrainConfig]:
    """Model, tokenizer, batches and training config for ``preset`` (overrides win)."""
    tokenizer, batches = shakespeare_batches(
        preset.model["block_size"], preset.batch_size
    )
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **preset.model))
    settings = {
        **preset.train,
        **{k: v for k, v in train_overrides.items() if v is not None},
    }
    return model, tokenizer, batches, TrainConfig(**settings)


def run_meta(preset: Preset, model: GPT) -> dict[str, Any]:
    """What a checkpoint must remember so that generation can rebuild the model."""
    return {
        "preset": preset.name,
        "model_config": asdict(model.config),
        "tokenizer": TOKENIZER_FILE,
    }


def load_run(
    run_dir: str | Path, device: torch.device | str = "cpu"
) -> tuple[GPT, CharTokenizer]:
    """Rebuild the model and tokenizer of a run folder written by ``lm_course train``."""
    run_dir = Path(run_dir)
    folder = latest_checkpoint(run_dir)
    if folder is None:
        raise FileNotFoundError(
            f"no checkpoint in {str(run_dir)!r}; train one first with "
            f"`python -m lm_course train --preset cpu --out {run_dir}`"
        )
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    meta = state.get("meta") or {}
    if "model_config" not in meta:
        raise ValueError(
            f"{str(folder)!r} was not written by `lm_course train` (no model_config)"
        )
    model = GPT(GPTConfig(**meta["model_config"])).to(device)
    load_model_weights(folder, model)
    tokenizer = CharTokenizer.load(run_dir / meta.get("tokenizer", TOKENIZER_FILE))
    return model.eval(), tokenizer
