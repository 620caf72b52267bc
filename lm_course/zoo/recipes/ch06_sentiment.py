"""Chapter 6 (applications): chapter 5's sentiment classifier, cached for monitoring.

* ``ch06-sentiment``: the MLM encoder of chapter 5 (``ch05-encoder``), fine-tuned in
  full on the 8,530 training sentences of the movie-review polarity data, exactly as
  chapter 5 fine-tunes it (:func:`lm_course.finetune.setup` with ``"full"``, the same
  batches, steps, learning rate and seed), so the cached model is the one chapter 5
  scores;
* ``ch06-sentiment-gpu``: the same on ``ch05-encoder-gpu``, with chapter 5's GPU
  settings.

``fit`` stores the validation and test accuracy in the entry's metrics. Load it with
:func:`sentiment_classifier`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ...data import sentence_polarity
from ...finetune import (
    Classifier,
    SentenceBatches,
    accuracy,
    fine_tuning_config,
    setup,
)
from ...models.encoder import EncoderConfig, TransformerEncoder
from ...pretraining.vocab import Vocab
from ...training import History, pick_device, train
from ..loader import Record, load
from ..recipe import Recipe, get_recipe, register
from .ch05 import ENCODER, load_vocab

__all__ = [
    "SENTIMENT",
    "Sentiment",
    "recipe_for",
    "review_splits",
    "sentiment_classifier",
]

CODE = (
    "lm_course.attention",
    "lm_course.positional",
    "lm_course.models.blocks",
    "lm_course.models.encoder",
    "lm_course.finetune",
    "lm_course.training",
    "lm_course.data.loaders",
    "lm_course.data.splits",
    "lm_course.pretraining.vocab",
)

# Chapter 5's fine-tuning settings (its PRESETS: ft_steps, ft_batch, ft_lr); the
# sentences are cut to 64 ids, both eos included.
SETTINGS: dict[str, dict[str, Any]] = {
    "cpu": {"batch_size": 32, "max_len": 64, "steps": 450, "lr": 1e-3},
    "gpu": {"batch_size": 64, "max_len": 64, "steps": 1500, "lr": 3e-4},
}


class Sentiment(NamedTuple):
    """What :func:`sentiment_classifier` returns: vocabulary, classifier, record."""

    vocab: Vocab
    model: Classifier
    record: Record


def review_splits() -> dict[str, tuple[list[str], list[int]]]:
    """The movie-review sentences as ``{"train" | "val" | "test": (texts, labels)}``
    (chapter 5's seeded 80/10/10 split; label 1 is positive)."""
    reviews = sentence_polarity()
    return {
        name: ([ex.text for ex in part], [ex.label for ex in part])
        for name, part in [
            ("train", reviews.train),
            ("val", reviews.val),
            ("test", reviews.test),
        ]
    }


def build(config: dict[str, Any]) -> Classifier:
    """The untrained classifier: an encoder of the trunk's shape, mean pooling."""
    pieces = config["pieces"]  # ids: the pieces, then pad and mask (as ch05-encoder)
    trunk = TransformerEncoder(
        EncoderConfig(vocab_size=pieces + 2, pad_id=pieces, **config["encoder"])
    )
    return Classifier(trunk, 2, pooling="mean", dropout=config["dropout"])


def fit(
    model: Classifier, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Fine-tune the pretrained trunk; metrics: validation and test accuracy."""
    trunk, _ = load(config["trunk"], device=device)
    # setup() adds the head with the seed and copies the trunk, as in chapter 5; the
    # result is then moved into the model the cache built (same shapes).
    model.load_state_dict(setup(trunk, "full", seed=seed).state_dict())
    vocab = load_vocab(device)
    data = review_splits()
    batches = SentenceBatches(
        vocab, {"train": data["train"]}, config["batch_size"], config["max_len"]
    )
    steps = config["steps"]
    settings = fine_tuning_config(steps, config["lr"], device, seed)
    history = train(model, batches, settings)
    metrics = {
        split: accuracy(model, vocab, *data[split], config["max_len"])
        for split in ("val", "test")
    }
    return history, metrics


def _register(machine: str) -> Recipe:
    suffix = "" if machine == "cpu" else "-gpu"
    trunk = ENCODER[machine]
    return register(
        Recipe(
            name=f"ch06-sentiment{suffix}",
            build=build,
            fit=fit,
            config={
                "trunk": trunk.name,
                "pieces": trunk.config["pieces"],
                "encoder": dict(trunk.config["model"]),
                "dropout": 0.1,
                **SETTINGS[machine],
            },
            data=("sentence_polarity/sentence_polarity.zip",),
            code=CODE,
            needs=(trunk.name,),
            description=f"ch05-encoder{suffix} fine-tuned on movie-review polarity.",
        )
    )


SENTIMENT = {machine: _register(machine) for machine in ("cpu", "gpu")}


def recipe_for(device: str | torch.device = "auto") -> Recipe:
    """``ch06-sentiment``, or ``ch06-sentiment-gpu`` on a CUDA device."""
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    return SENTIMENT["gpu" if device.type == "cuda" else "cpu"]


def sentiment_classifier(
    device: str | torch.device = "auto", recipe: str | None = None
) -> Sentiment:
    """The fine-tuned classifier (eval mode), its vocabulary and its record.

    Trained on first use (chapter 5's pretrained encoder first, if it is not cached
    either), read from the model cache afterwards. ``recipe`` overrides the choice by
    device (a registered name).
    """
    chosen = get_recipe(recipe) if recipe is not None else recipe_for(device)
    model, record = load(chosen, device=device)
    return Sentiment(load_vocab(device), model, record)
