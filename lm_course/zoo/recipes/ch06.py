"""Chapter 6 (applications): the Chinese-to-English translator.

* ``ch06-translator``: the chapter's CPU model, a small encoder-decoder Transformer
  trained on Tatoeba (character-level Chinese in, English words out) in a few minutes
  on one CPU thread;
* ``ch06-translator-gpu``: wider and deeper, trained longer; picked on a CUDA device;
* ``ch06-translator-tiny``: a seconds-long version for the tests of the ``translate``
  command (it translates badly).

``fit`` stores both vocabularies in the entry's metrics, so a warm cache can translate
without reading the data again.
"""

from __future__ import annotations

from typing import Any

import torch

from ...models.seq2seq import EncoderDecoder, Seq2SeqConfig
from ...training import History, TrainConfig, train
from ...translation.batches import PairBatches
from ...translation.vocab import Vocab, tokenize_en, tokenize_zh
from ..recipe import Recipe, register

CODE = (
    "lm_course.attention",
    "lm_course.positional",
    "lm_course.models.blocks",
    "lm_course.models.seq2seq",
    "lm_course.training",
    "lm_course.data.loaders",
    "lm_course.translation",
)

_ADAMW = dict(weight_decay=0.01, betas=[0.9, 0.98])

SIZES: dict[str, dict[str, Any]] = {
    # About 6 passes over the training pairs: what fits the chapter's CPU budget.
    "cpu": {
        "model": dict(max_len=64, n_layer=2, n_head=4, d_model=128, dropout=0.1),
        "min_count": 2,
        "tokens": 1024,
        "train": dict(
            max_steps=1200,
            lr=3e-3,
            warmup_steps=100,
            eval_every=200,
            eval_batches=10,
            **_ADAMW,
        ),
    },
    # About 60 passes: wider and deeper, with more dropout against over-fitting the
    # 21,000 training pairs.
    "gpu": {
        "model": dict(max_len=64, n_layer=3, n_head=4, d_model=256, dropout=0.3),
        "min_count": 2,
        "tokens": 4096,
        "train": dict(
            max_steps=3000,
            lr=1.5e-3,
            warmup_steps=300,
            eval_every=250,
            eval_batches=10,
            **_ADAMW,
        ),
    },
    "tiny": {
        "model": dict(max_len=64, n_layer=1, n_head=2, d_model=32, dropout=0.0),
        "min_count": 2,
        "tokens": 512,
        "train": dict(max_steps=20, lr=3e-3, warmup_steps=2, eval_batches=2, **_ADAMW),
    },
}


def vocabularies(
    train_pairs: list[tuple[str, str]], min_count: int
) -> tuple[Vocab, Vocab]:
    """Chinese (characters) and English (words) vocabularies of the training pairs."""
    src = Vocab.build((tokenize_zh(zh) for zh, _ in train_pairs), min_count)
    tgt = Vocab.build((tokenize_en(en) for _, en in train_pairs), min_count)
    return src, tgt


def build(config: dict[str, Any]) -> EncoderDecoder:
    """The untrained model (the vocabulary sizes are part of the config)."""
    return EncoderDecoder(Seq2SeqConfig(**config["model"]))


def fit(
    model: EncoderDecoder, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Train on the grouped Tatoeba split; metrics: validation loss and vocabularies."""
    # Imported here, not at the top: the registry imports every recipe module, and
    # the split needs zhconv, which only translation uses.
    from ...translation.data import tatoeba_splits

    splits = tatoeba_splits()
    src_vocab, tgt_vocab = vocabularies(splits.train, config["min_count"])
    sizes = (len(src_vocab), len(tgt_vocab))
    wanted = (config["model"]["src_vocab_size"], config["model"]["tgt_vocab_size"])
    if sizes != wanted:
        raise ValueError(
            f"the training data gives vocabularies of {sizes} tokens, the recipe's "
            f"model expects {wanted}"
        )
    batches = PairBatches(
        {"train": splits.train, "val": splits.val},
        src_vocab,
        tgt_vocab,
        max_len=config["model"]["max_len"],
        tokens=config["tokens"],
    )
    train_config = dict(config["train"], betas=tuple(config["train"]["betas"]))
    settings = TrainConfig(**train_config, seed=seed, device=str(device))
    history = train(model, batches, settings)
    metrics = {
        "val_loss": history.val_loss[-1],
        "src_vocab": src_vocab.itos,
        "tgt_vocab": tgt_vocab.itos,
    }
    return history, metrics


# Vocabulary sizes of the default split with min_count=2 (fit checks them).
VOCAB_SIZES = dict(src_vocab_size=2231, tgt_vocab_size=4047)


def _recipe(name: str, size: str, description: str) -> Recipe:
    config = dict(SIZES[size])
    config["model"] = dict(config["model"], **VOCAB_SIZES)
    config["train"] = dict(config["train"])
    return register(
        Recipe(
            name=name,
            build=build,
            fit=fit,
            config=config,
            data=("tatoeba_cmn_eng/cmn.txt",),
            seed=0,
            code=CODE,
            description=description,
        )
    )


TRANSLATOR = _recipe(
    "ch06-translator",
    "cpu",
    "Chinese-to-English encoder-decoder on Tatoeba, minutes on one CPU thread.",
)
TRANSLATOR_GPU = _recipe(
    "ch06-translator-gpu", "gpu", "The wider, longer-trained translator for a GPU."
)
TRANSLATOR_TINY = _recipe(
    "ch06-translator-tiny", "tiny", "A seconds-long translator for tests (poor)."
)
