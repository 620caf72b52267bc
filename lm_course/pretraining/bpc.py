"""Bits per character: a loss that compares models with different tokenizers.

A model's loss is in nats *per token*, and a token is a character for one model and a
few characters for another: a SentencePiece model with a loss of 4 nats per token may
compress text better than a character model with 1.5 nats per character. The fair
unit divides the *total* information by the number of characters of the text:

    bits per character = (sum over tokens of -ln P(token | context)) / ln 2 / n_chars

which is the number of bits per character a compressor driven by the model would need.
:func:`stream_nll` adds up the losses of a causal model over a whole stream.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_number, describe

__all__ = ["bits_per_character", "stream_nll"]


def bits_per_character(total_nats: float, n_chars: int) -> float:
    """``total_nats / ln 2 / n_chars``: a text's information per character, in bits."""
    check_number("total_nats", total_nats, minimum=0)
    check_int("n_chars", n_chars, minimum=1)
    return total_nats / math.log(2) / n_chars


@torch.no_grad()
def stream_nll(
    model: nn.Module, ids: Tensor, block_size: int, batch_size: int = 16
) -> tuple[float, int]:
    """Total ``-ln P`` of every token of ``ids`` after the first, and their number.

    The stream ``(n,)`` is cut into consecutive windows of ``block_size`` inputs; each
    window predicts the next ``block_size`` tokens, so every token from the second on is
    predicted once (with at most ``block_size`` tokens of context; fewer at the start
    of each window). ``model(x)`` must return ``(logits (batch, seq, vocab), ...)``.
    Prepend a separator to ``ids`` to have the first real token predicted too.

    Returns:
        ``(total_nats, n_predicted)``, Python numbers.
    """
    if not isinstance(ids, Tensor) or ids.dim() != 1 or ids.is_floating_point():
        raise TypeError(f"ids must be a 1-D tensor of token ids, got {describe(ids)}")
    check_int("block_size", block_size, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    if len(ids) < 2:
        raise ValueError("ids must hold at least two tokens: one to predict from")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    starts = list(range(0, len(ids) - 1, block_size))
    try:
        for i in range(0, len(starts), batch_size):
            # Windows of one length stack into a batch (only the last may be shorter).
            for chunk in _same_width(starts[i : i + batch_size], len(ids), block_size):
                x = torch.stack([ids[s : s + n] for s, n in chunk])
                y = torch.stack([ids[s + 1 : s + 1 + n] for s, n in chunk])
                logits = model(x.to(device))[0]  # (batch, n, vocab)
                nll = F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    y.to(device).flatten(),
                    reduction="sum",
                )
                total += float(nll)
                count += y.numel()
    finally:
        model.train(was_training)
    return total, count


def _same_width(
    starts: list[int], n_ids: int, block_size: int
) -> list[list[tuple[int, int]]]:
    """Group window starts by the length of their window: ``[[(start, length)]]``."""
    runs: dict[int, list[tuple[int, int]]] = {}
    for s in starts:
        length = min(block_size, n_ids - 1 - s)
        runs.setdefault(length, []).append((s, length))
    return list(runs.values())
