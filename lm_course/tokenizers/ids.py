"""Checking token ids on their way back into text, shared by every tokenizer."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch


def as_id_list(
    ids: Sequence[int] | torch.Tensor, vocab_size: int, name: str = "ids"
) -> list[int]:
    """Accept a list of ints or a 1-D integer tensor ``(seq,)``; return Python ints.

    Every id must lie in ``[0, vocab_size)``: an id outside it almost always means the
    ids came from another tokenizer, which would otherwise decode to the wrong text
    silently.
    """
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex():
            raise TypeError(
                f"{name} must be a 1-D integer tensor, got shape {tuple(ids.shape)} "
                f"and dtype {ids.dtype}; decode one sequence at a time, e.g. "
                "decode(batch[0])"
            )
        out = ids.tolist()
    elif isinstance(ids, str | bytes):
        raise TypeError(f"{name} must be a list of ints, got {type(ids).__name__}")
    else:
        out = []
        for pos, i in enumerate(ids):
            # bool is a subclass of int, but True as a token id is surely a mistake.
            # operator.index accepts every integer type (NumPy's too) and rejects
            # floats.
            try:
                if isinstance(i, bool):
                    raise TypeError
                out.append(operator.index(i))
            except TypeError:
                raise TypeError(
                    f"{name}[{pos}]={i!r} is not an int; token ids are integers"
                ) from None
    for pos, i in enumerate(out):
        if not 0 <= i < vocab_size:
            raise ValueError(
                f"{name}[{pos}]={i} is outside the vocabulary [0, {vocab_size}); "
                "were these ids made by another tokenizer?"
            )
    return out
