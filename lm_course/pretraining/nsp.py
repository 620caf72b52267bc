"""Next-sentence prediction (BERT) and sentence-order prediction (ALBERT): the pairs.

BERT's second pretraining task shows the model two segments ``A [SEP] B`` and asks
whether ``B`` really followed ``A`` in a document (label 1, "IsNext") or was drawn from
somewhere else in the corpus (label 0, "NotNext"), half and half. The classifier reads
the vector of the first token, ``[CLS]``.

With a *random* ``B`` the two segments usually differ in topic -- Shakespeare after an
abstract about neural networks -- so the task can be solved without understanding how
sentences follow each other. ALBERT's *sentence-order prediction* keeps both segments
and swaps their order for the negative examples: the topic no longer gives it away.
:func:`make_pairs` builds both kinds from the same documents, so that the two can be
compared on the same text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_choice, check_int
from .vocab import Vocab

__all__ = ["NEGATIVES", "SentencePair", "make_pairs", "pair_batch", "segments"]

NEGATIVES = ("random", "swap")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SentencePair:
    """Two segments and whether ``second`` really followed ``first`` (1) or not (0)."""

    first: str
    second: str
    label: int


def segments(document: str) -> list[str]:
    """A document cut into segments: its lines, or its sentences if it is one line.

    A play's speech gives its lines (the speaker's name, which ends in ``":"``, is
    dropped); an abstract gives its sentences.
    """
    lines = [line.strip() for line in document.split("\n") if line.strip()]
    if len(lines) > 1:
        return [line for line in lines if not line.endswith(":")]
    return [s for s in _SENTENCE_END.split(document.strip()) if s]


def make_pairs(
    documents: Sequence[str],
    n_pairs: int,
    *,
    negatives: str = "random",
    seed: int = 0,
) -> list[SentencePair]:
    """Half true continuations, half negatives, from documents with 2+ segments.

    Args:
        documents: texts; each is cut by :func:`segments`, and those with fewer than
            two segments are skipped.
        n_pairs: how many pairs to make (labels alternate 1, 0, 1, ...).
        negatives: ``"random"`` -- BERT's NSP: ``second`` is a segment of another
            document; ``"swap"`` -- ALBERT's SOP: the true pair in the wrong order.
        seed: seeds ``random.Random``, so the pairs are the same every time.

    Returns:
        ``n_pairs`` :class:`SentencePair` objects.
    """
    check_int("n_pairs", n_pairs, minimum=1)
    check_choice("negatives", negatives, NEGATIVES)
    docs = [s for s in (segments(d) for d in documents) if len(s) >= 2]
    if len(docs) < 2:
        raise ValueError("need at least two documents with two or more segments each")
    rng = random.Random(check_int("seed", seed, minimum=0))
    pairs = []
    for k in range(n_pairs):
        d = rng.randrange(len(docs))
        i = rng.randrange(len(docs[d]) - 1)
        first, second = docs[d][i], docs[d][i + 1]
        if k % 2 == 0:
            pairs.append(SentencePair(first, second, 1))
        elif negatives == "swap":
            pairs.append(SentencePair(second, first, 0))
        else:
            other = rng.randrange(len(docs) - 1)
            other += other >= d  # any document but this one
            pairs.append(SentencePair(first, rng.choice(docs[other]), 0))
    return pairs


def pair_batch(
    vocab: Vocab, pairs: Sequence[SentencePair], max_len: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``eos A eos B eos`` rows, padded: ``(ids, keep, labels)``.

    The longer segment is cut first until a row fits ``max_len``. Returns ``ids`` and
    ``keep`` ``(batch, seq)`` (long, bool) and ``labels`` ``(batch,)`` long.
    """
    check_int("max_len", max_len, minimum=5)
    rows = []
    for pair in pairs:
        a, b = vocab.encode(pair.first), vocab.encode(pair.second)
        while len(a) + len(b) > max_len - 3:
            if len(a) >= len(b):
                a = a[:-1]
            else:
                b = b[:-1]
        rows.append([*a, vocab.eos, *b])
    ids, keep = vocab.pad_rows(rows, max_len)
    labels = torch.tensor([pair.label for pair in pairs], dtype=torch.long)
    return ids, keep, labels
