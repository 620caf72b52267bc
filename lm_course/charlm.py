"""The character-level GPT on Tiny Shakespeare, as the command line and bench use it.

This is glue between the data, the tokenizer, the model and the trainer: it holds no
concept of its own, only the choices that make a run reproducible (the split, the
tokenizer, the seed of the initial weights, where the run folder keeps what generation
needs later).
"""

from __future__ import annotations

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
from .training.runfolder import DamagedCheckpoint, inside, read_state

TOKENIZER_FILE = "tokenizer.json"


def shakespeare_batches(
    block_size: int, batch_size: int
) -> tuple[CharTokenizer, LMBatches]:
    """Character tokenizer and random-window batches over a fixed 90/10 split."""
    text = tiny_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer, LMBatches(
        train_val_split(ids, val_fraction=0.1), block_size, batch_size
    )


def build(
    preset: Preset, **train_overrides: Any
) -> tuple[GPT, CharTokenizer, LMBatches, TrainConfig]:
    """Model, tokenizer, batches and training config for ``preset`` (overrides win).

    The model's initial weights are drawn from the config's seed (without disturbing
    the caller's random state), so the same seed always builds the same model.
    """
    settings = {
        **preset.train,
        **{k: v for k, v in train_overrides.items() if v is not None},
    }
    config = TrainConfig(**settings)
    tokenizer, batches = shakespeare_batches(
        preset.model["block_size"], preset.batch_size
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **preset.model))
    return model, tokenizer, batches, config


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
    """Rebuild the model and tokenizer of a run folder written by ``lm_course train``.

    The newest intact checkpoint is used (a damaged newer one is skipped with a
    warning). A checkpoint without what generation needs raises an error naming the
    file, the field and what to do.
    """
    run_dir = Path(run_dir)
    folder = latest_checkpoint(run_dir)
    if folder is None:
        raise FileNotFoundError(
            f"no checkpoint in {str(run_dir)!r}; train one first with "
            f"`python -m lm_course train --preset cpu --out {run_dir}`"
        )
    state_file = folder / STATE_FILE
    meta = read_state(folder).get("meta")
    if not isinstance(meta, dict) or "model_config" not in meta:
        raise DamagedCheckpoint(
            f"{state_file} has no field 'meta.model_config' (the model's shape), so "
            "the model cannot be rebuilt; it was not written by `python -m lm_course "
            "train`, or the file is incomplete. Train again into a new folder"
        )
    config = GPTConfig.from_dict(
        meta["model_config"], source=f"{state_file} (field 'meta.model_config')"
    )
    model = GPT(config).to(device)
    load_model_weights(folder, model)
    tokenizer_file = inside(run_dir, meta.get("tokenizer", TOKENIZER_FILE), state_file)
    if not tokenizer_file.is_file():
        raise FileNotFoundError(
            f"{tokenizer_file} is missing (named by field 'meta.tokenizer' of "
            f"{state_file}); generation needs the tokenizer the run was trained with"
        )
    return model.eval(), CharTokenizer.load(tokenizer_file)
