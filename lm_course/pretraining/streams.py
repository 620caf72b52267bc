"""Documents packed into one stream of ids, the form pretraining reads text in.

Pretraining does not care where one document ends and the next begins, as long as it
is told: every document is encoded and followed by ``eos``, and the documents are
concatenated (after a seeded shuffle, so that windows mix the sources). Training windows
are then cut at random places in the stream -- RoBERTa's "full sentences" packing, with
no padding to waste compute on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import Tensor

from ..checks import check_int
from .vocab import Vocab

__all__ = ["pack_documents"]


def pack_documents(
    vocab: Vocab, documents: Sequence[str], *, shuffle_seed: int | None = 0
) -> Tensor:
    """Encode ``documents`` and join them, each followed by ``vocab.eos``.

    Args:
        vocab: the :class:`~lm_course.pretraining.vocab.Vocab` to encode with.
        documents: the texts.
        shuffle_seed: shuffle the documents with ``random.Random(shuffle_seed)`` first;
            ``None`` keeps their order.

    Returns:
        ``(n_tokens,)`` ``torch.long`` ids.
    """
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise TypeError(
            "documents must be a list of strings, got "
            f"{type(documents).__name__}; wrap a single text in a list"
        )
    order = list(range(len(documents)))
    if shuffle_seed is not None:
        random.Random(check_int("shuffle_seed", shuffle_seed, minimum=0)).shuffle(order)
    ids: list[int] = []
    for i in order:
        ids.extend(vocab.encode(documents[i]))
        ids.append(vocab.eos)
    if not ids:
        raise ValueError("documents is empty: there is nothing to pack")
    return torch.tensor(ids, dtype=torch.long)
