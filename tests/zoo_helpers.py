"""A micro recipe (a bigram model, a fraction of a second to train) for the cache tests.

``fit`` appends a line to the file named by ``ZOO_TEST_LOG`` each time it trains, so a
test can count trainings, including those of other processes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch
from training_helpers import TinyLM, markov_tokens

from lm_course.training import History, LMBatches, TrainConfig, train, train_val_split
from lm_course.zoo import Recipe

LOG_ENV = "ZOO_TEST_LOG"


def build(config: dict[str, Any]) -> TinyLM:
    """A bigram model of width ``config["dim"]``."""
    return TinyLM(dim=config["dim"], dropout=0.0)


def fit(
    model: TinyLM, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """A few steps on Markov-chain tokens; sleeps ``config["sleep"]`` seconds first."""
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} seed={seed}\n")
    time.sleep(config.get("sleep", 0.0))
    batches = LMBatches(train_val_split(markov_tokens(600)), block_size=8, batch_size=4)
    settings = TrainConfig(
        max_steps=config["steps"],
        eval_every=5,
        eval_batches=2,
        log_every=2,
        device=str(device),
        progress=False,
        seed=seed,
    )
    history = train(model, batches, settings)
    return history, {"val_loss": history.val_loss[-1], "note": "micro"}


MICRO = Recipe(
    name="micro",
    build=build,
    fit=fit,
    config={"dim": 8, "steps": 10},
    seed=0,
    code=("training_helpers",),
    description="A bigram model for the cache tests.",
)


def trainings(log: str | os.PathLike[str]) -> list[str]:
    """The lines ``fit`` wrote to ``log``: one per training."""
    if not os.path.exists(log):
        return []
    with open(log, encoding="utf-8") as handle:
        return handle.read().splitlines()


def tiny_ch05_encoder(
    monkeypatch: Any, data: Path, cache: Path, model: dict[str, Any]
) -> Recipe:
    """Register a 2-step copy of chapter 5's encoder recipe of shape ``model``.

    The cache goes to ``cache``, and the test's recipes into a copy of the registry
    (``monkeypatch`` undoes both), so a recipe built on chapter 5's trunk can be
    trained end to end in seconds.
    """
    from lm_course.zoo import recipe as recipe_module
    from lm_course.zoo import recipe_names, register
    from lm_course.zoo.recipes import ch05

    monkeypatch.setenv("LM_COURSE_DATA", str(data))
    monkeypatch.setenv("LM_COURSE_CACHE", str(cache))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    monkeypatch.delenv("LM_COURSE_MODELS", raising=False)
    recipe_names()  # load every recipe before the registry is copied
    monkeypatch.setattr(recipe_module, "_REGISTRY", dict(recipe_module._REGISTRY))
    encoder = ch05.ENCODER["cpu"]
    config = dict(encoder.config, model=model)
    config["train"] = {**config["train"], "max_steps": 2, "warmup_steps": 1}
    config["train"]["eval_every"] = 0
    return register(
        dataclasses.replace(encoder, name="ch05-encoder-test", config=config),
        replace=True,
    )
