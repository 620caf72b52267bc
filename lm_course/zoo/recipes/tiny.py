"""``tiny-char-gpt``: a tiny character-level GPT on Tiny Shakespeare, seconds on a CPU.

The example recipe the cache and the reference curves are tested with: 2 layers, 2
heads, width 32, context 32, 200 steps of 8 windows. Its validation loss falls from
ln(65) = 4.17 to about 2.8 nats per character: enough to see that it learns, far from
what a chapter's model reaches.
"""

from __future__ import annotations

from typing import Any

import torch

from ...charlm import shakespeare_batches
from ...models.gpt import GPT, GPTConfig
from ...training import History, TrainConfig, train
from ..recipe import Recipe, register
from . import GPT_CODE

CONFIG: dict[str, Any] = {
    # 65 distinct characters in Tiny Shakespeare; fit checks it against the tokenizer.
    "model": dict(
        vocab_size=65, block_size=32, n_layer=2, n_head=2, d_model=32, dropout=0.0
    ),
    "batch_size": 8,
    "train": dict(
        max_steps=200,
        lr=3e-3,
        warmup_steps=10,
        eval_every=25,
        eval_batches=4,
        log_every=5,
    ),
}


def build(config: dict[str, Any]) -> GPT:
    """The untrained model."""
    return GPT(GPTConfig(**config["model"]))


def fit(
    model: GPT, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Train on a 90/10 split of the text; metrics: the final validation loss."""
    model_config = config["model"]
    tokenizer, batches = shakespeare_batches(
        model_config["block_size"], config["batch_size"]
    )
    if tokenizer.vocab_size != model_config["vocab_size"]:
        raise ValueError(
            f"the text has {tokenizer.vocab_size} distinct characters, the recipe's "
            f"model {model_config['vocab_size']}"
        )
    settings = TrainConfig(**config["train"], seed=seed, device=str(device))
    history = train(model, batches, settings)
    return history, {"val_loss": history.val_loss[-1]}


TINY_CHAR_GPT = register(
    Recipe(
        name="tiny-char-gpt",
        build=build,
        fit=fit,
        config=CONFIG,
        data=("tinyshakespeare/input.txt",),
        seed=0,
        code=GPT_CODE,
        description="A tiny character-level GPT on Tiny Shakespeare, seconds on a CPU.",
    )
)
