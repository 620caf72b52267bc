"""Labelled sentences as batches for the trainer, and the accuracy of a classifier.

Fine-tuning data is a list of sentences with a label each -- no stream, no windows:
each batch draws ``batch_size`` sentences at random, encodes them
``eos pieces eos`` and pads them to the longest (:meth:`Vocab.pad_rows`). The
sentences are encoded once, when the batches are made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..checks import check_int, describe
from ..pretraining.vocab import Vocab

__all__ = ["SentenceBatches", "accuracy", "predict"]


class SentenceBatches:
    """``get_batch(split, generator) -> (ids, keep, labels)`` over labelled sentences.

    Args:
        vocab: encodes the sentences.
        splits: split name -> ``(texts, labels)``, e.g.
            ``{"train": (texts, labels), "val": (...)}``; labels are ints.
        batch_size: sentences per batch.
        max_len: longest row in ids, both ``eos`` included.

    ``ids`` and ``keep`` are ``(batch_size, seq)`` (long, bool), ``labels``
    ``(batch_size,)`` long.
    """

    def __init__(
        self,
        vocab: Vocab,
        splits: Mapping[str, tuple[Sequence[str], Sequence[int]]],
        batch_size: int,
        max_len: int,
    ) -> None:
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab, got {describe(vocab)}")
        self.vocab = vocab
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.max_len = check_int("max_len", max_len, minimum=3)
        self.rows: dict[str, list[list[int]]] = {}
        self.labels: dict[str, Tensor] = {}
        for name, (texts, labels) in splits.items():
            if len(texts) != len(labels) or not texts:
                raise ValueError(
                    f"split {name!r} needs as many labels as texts (at least one), "
                    f"got {len(texts)} texts and {len(labels)} labels"
                )
            self.rows[name] = [vocab.encode(text) for text in texts]
            self.labels[name] = torch.tensor(list(labels), dtype=torch.long)

    def __call__(
        self, split: str, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``batch_size`` sentences of ``split`` drawn with ``generator``."""
        if split not in self.rows:
            raise ValueError(f"unknown split {split!r}; this has {sorted(self.rows)}")
        n = len(self.rows[split])
        pick = torch.randint(0, n, (self.batch_size,), generator=generator)
        rows = [self.rows[split][i] for i in pick.tolist()]
        ids, keep = self.vocab.pad_rows(rows, self.max_len)
        return ids, keep, self.labels[split][pick]


@torch.no_grad()
def predict(
    model: nn.Module,
    vocab: Vocab,
    texts: Sequence[str],
    max_len: int,
    batch_size: int = 256,
) -> Tensor:
    """Predicted class of each text, ``(len(texts),)`` long, in eval mode.

    ``model(ids, keep)`` must return ``(logits (batch, n_classes), ...)``.
    """
    check_int("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(texts), batch_size):
            ids, keep = vocab.batch(texts[start : start + batch_size], max_len)
            logits = model(ids.to(device), keep.to(device))[0]
            out.append(logits.argmax(-1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def accuracy(
    model: nn.Module,
    vocab: Vocab,
    texts: Sequence[str],
    labels: Sequence[int],
    max_len: int,
) -> float:
    """Share of ``texts`` whose predicted class is their label (a Python float)."""
    if len(texts) != len(labels) or not texts:
        raise ValueError("texts and labels must be non-empty and of the same length")
    predicted = predict(model, vocab, texts, max_len)
    return (predicted == torch.tensor(list(labels))).float().mean().item()
