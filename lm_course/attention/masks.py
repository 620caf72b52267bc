"""The basic attention masks: causal, sliding-window (local) and padding.

Mask convention of the whole package: a **boolean** tensor where ``True`` means "this
query may attend to this key", broadcastable to ``(batch, heads, q_len, k_len)``, the
convention of :func:`torch.nn.functional.scaled_dot_product_attention`.

When there are more keys than queries (decoding with a key/value cache: the keys hold
the past plus the new tokens) the queries are the *last* ``q_len`` of the ``k_len``
positions, so query ``i`` sits at position ``k_len - q_len + i``. Every mask here
follows that convention. The sparse patterns of chapter 7 (strided, block-local, global
tokens) are in :mod:`lm_course.attention.sparse`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lm_course.checks import check_int, describe, tracing

__all__ = ["causal_mask", "sliding_window_mask", "padding_mask", "query_key_positions"]


def query_key_positions(
    q_len: int, k_len: int | None = None, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Positions of the queries ``(q_len, 1)`` and of the keys ``(1, k_len)``.

    The queries are the last ``q_len`` of the ``k_len`` positions (the KV-cache
    layout); ``k_len`` defaults to ``q_len``. Masks are comparisons of the two.
    """
    check_int("q_len", q_len, minimum=1)
    k_len = q_len if k_len is None else check_int("k_len", k_len, minimum=1)
    if k_len < q_len:
        raise ValueError(
            f"k_len ({k_len}) must be >= q_len ({q_len}): the queries are the last "
            "q_len of the k_len positions"
        )
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    k_pos = torch.arange(k_len, device=device)[None, :]
    return q_pos, k_pos


def causal_mask(
    q_len: int, k_len: int | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Boolean causal mask ``(q_len, k_len)``: each query sees itself and the past.

    When ``q_len < k_len`` (decoding with a KV cache: the keys hold the past plus the
    new tokens) the queries are the *last* ``q_len`` positions, so query ``i`` sits at
    position ``k_len - q_len + i`` and may attend to keys ``0 .. k_len - q_len + i``.
    """
    q_pos, k_pos = query_key_positions(q_len, k_len, device)
    return k_pos <= q_pos


def sliding_window_mask(
    seq: int,
    window: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Causal *local* attention mask ``(seq, k_len)``: the last ``window`` positions.

    Each query sees the ``window`` positions up to and including its own.

    This is the "local attention" of articles 000 and 004: the cost per query is
    ``window`` instead of the whole prefix. ``k_len`` (default ``seq``) may exceed
    ``seq`` for KV-cache decoding, with the same position convention as
    :func:`causal_mask`.
    """
    check_int("window", window, minimum=1)
    q_pos, k_pos = query_key_positions(seq, k_len, device)
    return (k_pos <= q_pos) & (q_pos - k_pos < window)


def padding_mask(lengths_or_keep: Tensor, max_len: int | None = None) -> Tensor:
    """Mask out padding keys; returns a boolean ``(batch, 1, 1, k_len)`` mask.

    Args:
        lengths_or_keep: either the true lengths ``(batch,)`` (integer; the first
            ``lengths[b]`` tokens of row ``b`` are real), or a ``keep`` mask
            ``(batch, k_len)``, boolean or 0/1 integer, where ``True``/``1`` marks a
            real token (the ``attention_mask`` convention of Hugging Face tokenizers --
            the opposite of ``key_padding_mask`` in
            :class:`torch.nn.MultiheadAttention`).
        max_len: padded length when lengths are given (default: the largest length).

    The result broadcasts over heads and queries: padding *keys* are hidden from every
    query. Padding *queries* still produce outputs; ignore them in the loss.
    """
    x = lengths_or_keep
    if not isinstance(x, Tensor) or x.dim() not in (1, 2):
        raise TypeError(
            "lengths_or_keep must be a tensor of lengths (batch,) or a keep mask "
            f"(batch, k_len), got {describe(x)}"
        )
    if x.is_floating_point() or x.is_complex():
        raise TypeError(
            f"lengths_or_keep must hold integer lengths or a boolean or 0/1 integer "
            f"keep mask, got dtype {x.dtype}"
        )
    if x.dim() == 2:
        if x.dtype != torch.bool:
            if not tracing() and not ((x == 0) | (x == 1)).all():
                raise ValueError(
                    "a 2-D keep mask must be boolean or contain only 0 and 1 "
                    "(1 = real token, 0 = padding)"
                )
            x = x.bool()
        return x[:, None, None, :]
    if x.dtype == torch.bool:
        raise TypeError("lengths must be an integer tensor, got dtype torch.bool")
    if (x < 0).any():
        raise ValueError(f"lengths must be >= 0, got {x.tolist()}")
    longest = int(x.max()) if x.numel() else 0
    max_len = longest if max_len is None else check_int("max_len", max_len, minimum=0)
    if max_len < longest:
        raise ValueError(
            f"max_len ({max_len}) is shorter than the longest length ({longest})"
        )
    keep = torch.arange(max_len, device=x.device)[None, :] < x[:, None]
    return keep[:, None, None, :]
