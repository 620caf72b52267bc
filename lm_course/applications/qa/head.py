"""A span-prediction head (片段预测头) on the encoder, and its training batches.

BERT answers SQuAD questions with one linear layer on top of the encoder (Devlin,
2019): each position gets a *start* score and an *end* score; a softmax over the
positions of a window turns them into the probability that the answer starts (ends)
there, and training minimises the cross-entropy of the true start and end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...checks import check_hidden, check_int, describe
from ...models.encoder import TransformerEncoder
from ...pretraining.vocab import Vocab
from .features import Window

__all__ = ["SpanBatches", "SpanHead", "SpanModel", "pad_windows", "span_loss"]


class SpanHead(nn.Module):
    """``(batch, seq, d_model)`` -> start and end logits, ``(batch, seq)`` each."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.proj = nn.Linear(d_model, 2)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Start and end logits ``(batch, seq)`` for ``hidden`` ``(batch, seq, d)``."""
        check_hidden(hidden, self.d_model, self.proj.weight.dtype, "hidden")
        start, end = self.proj(hidden).unbind(-1)
        return start, end


class SpanModel(nn.Module):
    """An encoder with a :class:`SpanHead`: ``(ids, keep) -> (start, end)`` logits.

    Padding positions (``keep`` False) get ``-inf``, so no answer starts there.
    """

    def __init__(self, trunk: TransformerEncoder) -> None:
        super().__init__()
        if not isinstance(trunk, TransformerEncoder):
            raise TypeError(
                f"trunk must be a TransformerEncoder, got {describe(trunk)}"
            )
        self.trunk = trunk
        self.head = SpanHead(trunk.config.d_model)

    def forward(self, ids: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``(batch, seq)`` ×2 for ids and keep mask ``(batch, seq)``."""
        start, end = self.head(self.trunk.encode(ids, keep))
        return (
            start.masked_fill(~keep.bool(), float("-inf")),
            end.masked_fill(~keep.bool(), float("-inf")),
        )


def span_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Mean cross-entropy of the true start and end; ``batch`` is
    ``(ids, keep, starts, ends)``, with ``starts`` and ``ends`` ``(batch,)``."""
    ids, keep, starts, ends = batch
    start_logits, end_logits = model(ids, keep)
    return (
        F.cross_entropy(start_logits, starts) + F.cross_entropy(end_logits, ends)
    ) / 2


def pad_windows(vocab: Vocab, rows: Sequence[Window]) -> tuple[Tensor, Tensor]:
    """Windows as ``(ids, keep)``, ``(batch, seq)`` long and bool, padded right."""
    if len(rows) == 0:
        raise ValueError("rows is empty: a batch needs at least one window")
    width = max(len(row.ids) for row in rows)
    ids = torch.full((len(rows), width), vocab.pad, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row.ids)] = torch.tensor(row.ids, dtype=torch.long)
    return ids, ids != vocab.pad


class SpanBatches:
    """``get_batch(split, generator) -> (ids, keep, starts, ends)`` for the trainer.

    Args:
        vocab: gives the padding id.
        splits: split name -> windows (:func:`~.features.windows`).
        batch_size: windows per batch, drawn at random with the trainer's generator.
    """

    def __init__(
        self, vocab: Vocab, splits: dict[str, Sequence[Window]], batch_size: int
    ) -> None:
        self.vocab = vocab
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        for name, rows in splits.items():
            if len(rows) == 0:
                raise ValueError(f"split {name!r} has no windows")
        self.splits = {name: list(rows) for name, rows in splits.items()}

    def __call__(self, split: str, generator: torch.Generator) -> tuple[Tensor, ...]:
        """``batch_size`` windows of ``split``: ids, keep ``(batch, seq)``; starts,
        ends ``(batch,)``."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this has {sorted(self.splits)}")
        rows = self.splits[split]
        pick = torch.randint(0, len(rows), (self.batch_size,), generator=generator)
        chosen = [rows[i] for i in pick.tolist()]
        ids, keep = pad_windows(self.vocab, chosen)
        starts = torch.tensor([row.start for row in chosen], dtype=torch.long)
        ends = torch.tensor([row.end for row in chosen], dtype=torch.long)
        return ids, keep, starts, ends
