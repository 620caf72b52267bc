"""Chapter 5's pretrained models, which chapter 6 fine-tunes and prompts.

* ``ch05-vocab`` -- a SentencePiece vocabulary (unigram, uncased) trained on the
  training part of the course's English corpus (:mod:`lm_course.data.corpus`). The
  "model" has no weights: the SentencePiece file travels in the entry's metrics, so a
  warm cache needs no data to encode text.
* ``ch05-encoder`` -- a bidirectional Transformer encoder pretrained with masked
  language modelling (BERT's 80/10/10 rule) on the same corpus: the trunk chapter 6
  puts span-prediction and classification heads on.
* ``ch05-causal`` -- a GPT of the same shape pretrained as a causal language model on
  the same corpus, with a longer context: the model chapter 6 prompts.
* ``ch05-encoder-gpu`` and ``ch05-causal-gpu`` -- wider, deeper and trained longer,
  picked on a CUDA device.

:func:`pretrained` is the one call a chapter needs::

    from lm_course.zoo.recipes.ch05 import pretrained

    vocab, encoder, record = pretrained("encoder")   # or "causal"
    ids, keep = vocab.batch(["a gripping , funny film ."], max_len=64)
    vectors = encoder.encode(ids, keep)               # (1, seq, d_model)
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

import torch
from torch import nn

from ...checks import check_choice
from ...data.corpus import CORPUS_FILES, english_corpus
from ...models.encoder import EncoderConfig, TransformerEncoder
from ...models.gpt import GPT, GPTConfig
from ...pretraining.mlm import MLMBatches, mlm_loss
from ...pretraining.streams import pack_documents
from ...pretraining.vocab import Vocab
from ...training import History, LMBatches, TrainConfig, pick_device, train
from ..loader import Record, load
from ..recipe import Recipe, register

__all__ = [
    "CAUSAL",
    "ENCODER",
    "VOCAB",
    "Pretrained",
    "load_vocab",
    "pretrained",
    "recipe_for",
]

CODE = (
    "lm_course.attention",
    "lm_course.positional",
    "lm_course.models.blocks",
    "lm_course.models.encoder",
    "lm_course.models.gpt",
    "lm_course.training",
    "lm_course.tokenizers.spm",
    "lm_course.data.loaders",
    "lm_course.data.corpus",
    "lm_course.pretraining.vocab",
    "lm_course.pretraining.streams",
    "lm_course.pretraining.mlm",
)

VOCAB_PIECES = 4000
_ADAMW = dict(betas=[0.9, 0.98], weight_decay=0.01, grad_clip=1.0)

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "encoder": {
        "cpu": {
            "model": dict(max_len=128, n_layer=2, n_head=4, d_model=128, dropout=0.0),
            "batch_size": 16,
            "mask_prob": 0.15,
            "train": dict(
                max_steps=1000, lr=2e-3, warmup_steps=50, eval_every=100, **_ADAMW
            ),
        },
        "gpu": {
            "model": dict(max_len=128, n_layer=6, n_head=6, d_model=384, dropout=0.1),
            "batch_size": 128,
            "mask_prob": 0.15,
            "train": dict(
                max_steps=6000, lr=1e-3, warmup_steps=300, eval_every=500, **_ADAMW
            ),
        },
    },
    "causal": {
        "cpu": {
            "model": dict(block_size=128, n_layer=2, n_head=4, d_model=128),
            "batch_size": 16,
            "train": dict(
                max_steps=400, lr=5e-3, warmup_steps=40, eval_every=100, **_ADAMW
            ),
        },
        "gpu": {
            "model": dict(
                block_size=256, n_layer=6, n_head=6, d_model=384, dropout=0.1
            ),
            "batch_size": 64,
            "train": dict(
                max_steps=6000, lr=1e-3, warmup_steps=300, eval_every=500, **_ADAMW
            ),
        },
    },
}


class Pretrained(NamedTuple):
    """What :func:`pretrained` returns: the vocabulary, the trunk, its record."""

    vocab: Vocab
    model: nn.Module
    record: Record


# --- the vocabulary -------------------------------------------------------------------


class _NoWeights(nn.Module):
    """The vocabulary recipe's "model": nothing to store but the metrics."""


def _fit_vocab(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    del model, device  # nothing to train but the tokenizer
    corpus = english_corpus(seed=config["corpus_seed"])
    vocab = Vocab.train(corpus.documents("train"), config["pieces"])
    spm_model = base64.b64encode(vocab.to_bytes()).decode("ascii")
    return History(), {"spm_model": spm_model, "lowercase": vocab.lowercase}


VOCAB = register(
    Recipe(
        name="ch05-vocab",
        build=lambda config: _NoWeights(),
        fit=_fit_vocab,
        config={"pieces": VOCAB_PIECES, "corpus_seed": 0},
        data=CORPUS_FILES,
        code=CODE,
        description="SentencePiece vocabulary (4,000 pieces, uncased) of the corpus.",
    )
)


def load_vocab(device: str | torch.device = "auto") -> Vocab:
    """The course's pretraining vocabulary (trained once, then read from the cache)."""
    _, record = load(VOCAB, device=device)
    metrics = record.metrics
    return Vocab.from_bytes(
        base64.b64decode(metrics["spm_model"]), lowercase=metrics["lowercase"]
    )


# --- the pretrained trunks ------------------------------------------------------------


def _streams(vocab: Vocab, seed: int) -> dict[str, torch.Tensor]:
    corpus = english_corpus(seed=0)
    return {
        "train": pack_documents(vocab, corpus.documents("train"), shuffle_seed=seed),
        "val": pack_documents(vocab, corpus.documents("heldout"), shuffle_seed=0),
    }


def _build_encoder(config: dict[str, Any]) -> TransformerEncoder:
    pieces = config["pieces"]  # ids: the pieces, then pad and mask
    return TransformerEncoder(
        EncoderConfig(vocab_size=pieces + 2, pad_id=pieces, **config["model"])
    )


def _build_causal(config: dict[str, Any]) -> GPT:
    return GPT(GPTConfig(vocab_size=config["pieces"] + 2, **config["model"]))


def _fit(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Pretrain on the packed corpus; metrics: the final held-out loss."""
    vocab = load_vocab(device)
    if len(vocab) != config["pieces"] + 2:
        raise ValueError(
            f"the vocabulary has {len(vocab)} ids, the recipe expects "
            f"{config['pieces'] + 2}"
        )
    streams = _streams(vocab, seed)
    settings = TrainConfig(
        **config["train"], eval_batches=8, log_every=10, seed=seed, device=str(device)
    )  # eval_batches fixed: the held-out loss is always measured on the same windows
    if isinstance(model, TransformerEncoder):
        batches = MLMBatches(
            streams,
            model.config.max_len,
            config["batch_size"],
            vocab,
            config["mask_prob"],
        )
        history = train(model, batches, settings, loss_fn=mlm_loss)
    else:
        batches = LMBatches(streams, model.config.block_size, config["batch_size"])
        history = train(model, batches, settings)
    return history, {"val_loss": history.val_loss[-1]}


def _register(kind: str, machine: str) -> Recipe:
    suffix = "" if machine == "cpu" else "-gpu"
    objective = "masked" if kind == "encoder" else "causal"
    return register(
        Recipe(
            name=f"ch05-{kind}{suffix}",
            build=_build_encoder if kind == "encoder" else _build_causal,
            fit=_fit,
            config={"pieces": VOCAB_PIECES, **SIZES[kind][machine]},
            data=CORPUS_FILES,
            code=CODE,
            needs=("ch05-vocab",),
            description=f"{objective} LM pretrained on the course's English corpus"
            f" ({machine}).",
        )
    )


ENCODER = {machine: _register("encoder", machine) for machine in ("cpu", "gpu")}
CAUSAL = {machine: _register("causal", machine) for machine in ("cpu", "gpu")}


def recipe_for(kind: str, device: str | torch.device = "auto") -> Recipe:
    """The ``"encoder"`` or ``"causal"`` recipe for ``device`` (GPU one on CUDA)."""
    check_choice("kind", kind, ("encoder", "causal"))
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    machine = "gpu" if device.type == "cuda" else "cpu"
    return (ENCODER if kind == "encoder" else CAUSAL)[machine]


def pretrained(kind: str, device: str | torch.device = "auto") -> Pretrained:
    """The vocabulary and the pretrained ``"encoder"`` (MLM) or ``"causal"`` (GPT).

    Trained on first use (a few minutes on a CPU), read from the cache afterwards. The
    model is in eval mode on ``device``; fine-tune a copy (``copy.deepcopy``) to keep
    the original.
    """
    recipe = recipe_for(kind, device)
    model, record = load(recipe, device=device)
    return Pretrained(load_vocab(device), model, record)
