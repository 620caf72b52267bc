"""Chapter 6 (applications): extractive question answering on XQuAD-English.

XQuAD's 48 English articles (1,190 questions) are split by article
(:func:`lm_course.applications.qa.split_by_article`, 12 test articles, seed 0), and
chapter 5's MLM encoder is fine-tuned in full, with a span-prediction head, on the
training articles' windows that hold their answer.

* ``ch06-qa-en`` -- from the pretrained ``ch05-encoder``, all training questions;
* ``ch06-qa-en-scratch`` -- the same encoder shape from random weights: what
  pretraining is worth;
* ``ch06-qa-en-q230`` -- from the pretrained encoder, a quarter of the training
  questions (the first 230): how F1 grows with data;
* ``-gpu`` variants of the first two: ``ch05-encoder-gpu``, trained longer.

``fit`` stores the test exact match and F1 in the entry's metrics. Load a model with
:func:`qa_model`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ...applications.qa import (
    SpanBatches,
    SpanModel,
    predict,
    span_loss,
    split_by_article,
    squad_scores,
    windows,
)
from ...checks import check_choice
from ...data import xquad
from ...data.loaders import QAExample
from ...finetune import fine_tuning_config
from ...models.encoder import EncoderConfig, TransformerEncoder
from ...pretraining.vocab import Vocab
from ...training import History, pick_device, train
from ..loader import Record, load
from ..recipe import Recipe, get_recipe, register
from .ch05 import ENCODER, load_vocab

__all__ = ["QA", "QAModel", "qa_model", "qa_splits", "recipe_for"]

CODE = (
    "lm_course.attention",
    "lm_course.positional",
    "lm_course.models.blocks",
    "lm_course.models.encoder",
    "lm_course.applications.qa",
    "lm_course.training",
    "lm_course.data.loaders",
    "lm_course.pretraining.vocab",
)

TEST_ARTICLES = 12
# Windows of the encoder's 128 ids; a context longer than one window is read in
# windows 80 pieces apart; answers of at most 30 pieces (BERT's SQuAD setting).
WINDOW = {"stride": 80, "max_question": 32, "max_answer": 30}
SETTINGS: dict[str, dict[str, Any]] = {
    "cpu": {"batch_size": 16, "steps": 200, "lr": 1e-3},
    "gpu": {"batch_size": 32, "steps": 1500, "lr": 3e-4},
}


class QAModel(NamedTuple):
    """What :func:`qa_model` returns: vocabulary, span model, its record."""

    vocab: Vocab
    model: SpanModel
    record: Record


def qa_splits(seed: int = 0) -> tuple[list[QAExample], list[QAExample]]:
    """XQuAD-English as ``(train, test)``, split by article (12 test articles)."""
    return split_by_article(xquad("en"), TEST_ARTICLES, seed=seed)


def build(config: dict[str, Any]) -> SpanModel:
    """The untrained span model: an encoder of the trunk's shape and a span head."""
    pieces = config["pieces"]  # ids: the pieces, then pad and mask (as ch05-encoder)
    return SpanModel(
        TransformerEncoder(
            EncoderConfig(vocab_size=pieces + 2, pad_id=pieces, **config["encoder"])
        )
    )


def fit(
    model: SpanModel, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Fine-tune on the training articles; metrics: test exact match and F1."""
    if config["init"] == "pretrained":
        trunk, _ = load(config["trunk"], device=device)
        model.trunk.load_state_dict(trunk.state_dict())
    torch.manual_seed(seed)  # the head (and a scratch trunk) start from the seed
    model.head.proj.reset_parameters()
    if config["init"] == "scratch":
        model.trunk = TransformerEncoder(model.trunk.config)
    model.to(device)
    vocab = load_vocab(device)
    train_part, test_part = qa_splits(config["split_seed"])
    if config["questions"] is not None:
        train_part = train_part[: config["questions"]]
    max_len = config["encoder"]["max_len"]
    window = {k: config[k] for k in ("stride", "max_question")}
    rows = [r for r in windows(vocab, train_part, max_len, **window) if r.start > 0]
    batches = SpanBatches(vocab, {"train": rows}, config["batch_size"])
    steps = config["steps"]
    settings = fine_tuning_config(steps, config["lr"], device, seed)
    history = train(model, batches, settings, loss_fn=span_loss)
    test_rows = windows(vocab, test_part, max_len, **window)
    answers = predict(model, vocab, test_part, test_rows, config["max_answer"])
    return history, {**squad_scores(answers, test_part), "train_windows": len(rows)}


def _register(
    machine: str, init: str = "pretrained", questions: int | None = None
) -> Recipe:
    trunk = ENCODER[machine]
    name = "ch06-qa-en"
    name += "" if init == "pretrained" else f"-{init}"
    name += "" if questions is None else f"-q{questions}"
    name += "" if machine == "cpu" else "-gpu"
    return register(
        Recipe(
            name=name,
            build=build,
            fit=fit,
            config={
                "trunk": trunk.name,
                "pieces": trunk.config["pieces"],
                "encoder": dict(trunk.config["model"]),
                "init": init,
                "questions": questions,
                "split_seed": 0,
                **WINDOW,
                **SETTINGS[machine],
            },
            data=("xquad/xquad.en.json",),
            code=CODE,
            needs=(trunk.name,) if init == "pretrained" else ("ch05-vocab",),
            description=f"span QA on XQuAD-en ({init}, {machine}).",
        )
    )


QA: dict[str, Recipe] = {}
for _machine in ("cpu", "gpu"):
    for _init in ("pretrained", "scratch"):
        _recipe = _register(_machine, _init)
        QA[_recipe.name] = _recipe
QA["ch06-qa-en-q230"] = _register("cpu", "pretrained", 230)


def recipe_for(device: str | torch.device = "auto", init: str = "pretrained") -> Recipe:
    """``ch06-qa-en`` (``init="scratch"``: ``ch06-qa-en-scratch``), ``-gpu`` on CUDA."""
    check_choice("init", init, ("pretrained", "scratch"))
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    name = "ch06-qa-en" + ("" if init == "pretrained" else f"-{init}")
    return QA[name + ("-gpu" if device.type == "cuda" else "")]


def qa_model(device: str | torch.device = "auto", recipe: str | None = None) -> QAModel:
    """A fine-tuned span model (eval mode), its vocabulary and its record.

    Trained on first use, read from the model cache afterwards; ``recipe`` names one
    of :data:`QA` (default: ``ch06-qa-en`` for ``device``).
    """
    chosen = get_recipe(recipe) if recipe is not None else recipe_for(device)
    model, record = load(chosen, device=device)
    return QAModel(load_vocab(device), model, record)
