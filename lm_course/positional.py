"""Positions for Transformers: sinusoidal, learned, rotary (RoPE) and ALiBi.

Attention by itself is blind to order: permuting the tokens permutes the outputs and
changes nothing else. The four schemes here put order back in two different ways:

* **absolute** -- add a vector per position to the token embeddings: a fixed
  sinusoidal table (Vaswani et al., 2017) or a learned table (GPT-2);
* **relative** -- act inside attention so that a score depends on the *distance* between
  query and key: rotate queries and keys by a position-dependent angle (RoPE, Su et al.,
  2021) or add a per-head linear penalty on distance to the scores (ALiBi, Press et al.,
  2022).

A model trained on ``T`` positions meets new ones when it reads more than ``T`` tokens.
*Position interpolation* (Chen et al., 2023) lets RoPE read ``s * T`` tokens by dividing
every position by ``s`` (``scale``), so that no angle is larger than in training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lm_course.checks import check_int, check_number

__all__ = [
    "sinusoidal_table",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rope_frequencies",
    "apply_rotary",
    "RotaryEmbedding",
    "alibi_slopes",
    "alibi_bias",
]


def _check_even(name: str, value: int, what: str) -> None:
    if value % 2 != 0:
        raise ValueError(
            f"{name} must be even for {what} (dimensions are used in pairs), got "
            f"{value}; try {value - 1} or {value + 1}"
        )


def _check_span(offset: int, length: int, max_len: int) -> None:
    if offset < 0 or offset + length > max_len:
        raise ValueError(
            f"positions {offset}..{offset + length - 1} do not fit in "
            f"max_len={max_len}; build the module with a larger max_len or use a "
            "shorter sequence"
        )


# ------------------------------------------------------------------- absolute positions


def sinusoidal_table(max_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The fixed sinusoidal table ``(max_len, d_model)`` of "Attention Is All You Need".

    ``PE[pos, 2i] = sin(pos / base^(2i/d_model))`` and
    ``PE[pos, 2i+1] = cos(pos / base^(2i/d_model))``: each pair of dimensions is a clock
    turning at its own speed, from one turn every 2*pi tokens down to very slow turns.
    """
    check_int("max_len", max_len, minimum=1)
    check_int("d_model", d_model, minimum=1)
    _check_even("d_model", d_model, "the sinusoidal table")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = pos * inv_freq  # (max_len, d_model / 2)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the sinusoidal table to token embeddings; has no trainable parameters.

    ``forward(x (batch, seq, d_model), offset=0)`` returns
    ``x + PE[offset:offset+seq]``.
    """

    def __init__(self, d_model: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        self.max_len = max_len
        # Not persistent: the table is recomputed on load and stays out of checkpoints.
        self.register_buffer(
            "table", sinusoidal_table(max_len, d_model, base), persistent=False
        )

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``(batch, seq, d_model)`` -> same shape, positions ``offset..`` added."""
        _check_span(offset, x.size(1), self.max_len)
        return x + self.table[offset : offset + x.size(1)]


class LearnedPositionalEmbedding(nn.Module):
    """One trainable vector per position (GPT-2 style); cannot go past ``max_len``.

    ``forward(x (batch, seq, d_model), offset=0)`` returns ``x + W[offset:offset+seq]``.
    """

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        self.max_len = check_int("max_len", max_len, minimum=1)
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``(batch, seq, d_model)`` -> same shape, with learned positions added."""
        _check_span(offset, x.size(1), self.max_len)
        return x + self.weight[offset : offset + x.size(1)]


# ------------------------------------------------------------------- rotary (RoPE)


def rope_frequencies(d_head: int, base: float = 10000.0) -> Tensor:
    """Rotation speeds ``(d_head / 2,)``: ``base^(-2i/d_head)`` radians per position."""
    check_int("d_head", d_head, minimum=1)
    _check_even("d_head", d_head, "rotary embeddings")
    return base ** (-torch.arange(0, d_head, 2, dtype=torch.float64) / d_head)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # Pairs are (x[i], x[i + d/2]) -- the "rotate half" layout of GPT-NeoX and LLaMA. It
    # is the paper's (x[2i], x[2i+1]) pairing with the dimensions permuted, so it has
    # the same properties and needs no strided indexing.
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def apply_rotary(
    x: Tensor,
    offset: int = 0,
    *,
    positions: Tensor | None = None,
    base: float = 10000.0,
    scale: float = 1.0,
) -> Tensor:
    """Rotate queries or keys ``(batch, heads, seq, d_head)`` by their positions.

    Position ``p`` turns dimension pair ``i`` by the angle ``p * base^(-2i/d_head)``. A
    rotation keeps vector lengths, and ``rot(q, m) . rot(k, n)`` depends on ``m - n``
    only, which is what makes RoPE a *relative* position scheme.

    Args:
        x: ``(batch, heads, seq, d_head)`` with even ``d_head``.
        offset: position of the first token (positions ``offset .. offset + seq - 1``).
        positions: explicit positions ``(seq,)`` instead of ``offset``.
        base: the slowest rotation is one turn every ``2 * pi * base`` positions.
        scale: position interpolation: position ``p`` is rotated as ``p / scale``.
    """
    if x.dim() != 4:
        raise ValueError(
            f"x must be (batch, heads, seq, d_head), got shape {tuple(x.shape)}"
        )
    inv_freq = rope_frequencies(x.size(-1), base)
    if positions is None:
        positions = torch.arange(offset, offset + x.size(2), dtype=torch.float64)
    elif positions.shape != (x.size(2),):
        raise ValueError(
            f"positions must have shape (seq,) = ({x.size(2)},), got "
            f"{tuple(positions.shape)}"
        )
    positions = _interpolated(positions.to(torch.float64).cpu(), scale)
    angles = positions[:, None] * inv_freq  # (seq, d_head / 2)
    cos = torch.cos(angles).to(x.device, x.dtype)
    sin = torch.sin(angles).to(x.device, x.dtype)
    return _rotate(x, cos, sin)


def _interpolated(positions: Tensor, scale: float) -> Tensor:
    """Positions divided by ``scale`` (unchanged, bit for bit, when it is 1)."""
    check_number("scale", scale, minimum=0, strict_min=True)
    return positions if scale == 1 else positions / scale


class RotaryEmbedding(nn.Module):
    """RoPE with the cosines and sines precomputed for ``max_len`` positions.

    ``forward(x (batch, heads, seq, d_head), offset=0)`` gives the same result as
    :func:`apply_rotary` without recomputing the angles at every call. ``scale`` turns
    on position interpolation: position ``p`` is rotated as ``p / scale``.
    """

    def __init__(
        self, d_head: int, max_len: int, base: float = 10000.0, scale: float = 1.0
    ) -> None:
        super().__init__()
        check_int("max_len", max_len, minimum=1)
        positions = _interpolated(torch.arange(max_len, dtype=torch.float64), scale)
        angles = positions[:, None] * rope_frequencies(d_head, base)
        self.max_len, self.scale = max_len, scale
        self.register_buffer("cos", torch.cos(angles).float(), persistent=False)
        self.register_buffer("sin", torch.sin(angles).float(), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``(batch, heads, seq, d_head)`` -> the same, rotated by positions offset.."""
        seq = x.size(2)
        _check_span(offset, seq, self.max_len)
        cos = self.cos[offset : offset + seq].to(x.dtype)
        sin = self.sin[offset : offset + seq].to(x.dtype)
        return _rotate(x, cos, sin)


# ------------------------------------------------------------------- ALiBi


def alibi_slopes(n_heads: int) -> Tensor:
    """The per-head ALiBi slopes ``(n_heads,)``.

    For a power of two ``n``, the slopes are the geometric sequence
    ``2^(-8/n), 2^(-16/n), ..., 2^-8`` (8 heads: ``1/2, 1/4, ..., 1/256``). For other
    counts the paper takes the slopes of the power of two below ``n`` and fills up with
    every other slope of the next power of two.
    """
    check_int("n_heads", n_heads, minimum=1)

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    lower = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_two(lower)
    if lower < n_heads:
        slopes += power_of_two(2 * lower)[0::2][: n_heads - lower]
    return torch.tensor(slopes)


def alibi_bias(
    n_heads: int,
    q_len: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Additive ALiBi score bias ``(n_heads, q_len, k_len)``: ``-slope_h * |i - j|``.

    Each head penalises attention to distant keys linearly, with its own slope. With
    ``k_len > q_len`` (KV-cache decoding) the queries are the last ``q_len`` positions,
    the convention of :func:`lm_course.attention.causal_mask`. The bias is symmetric in
    distance; combine it with a causal mask for a decoder.
    """
    check_int("q_len", q_len, minimum=1)
    k_len = q_len if k_len is None else check_int("k_len", k_len, minimum=1)
    if k_len < q_len:
        raise ValueError(f"k_len ({k_len}) must be >= q_len ({q_len})")
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    k_pos = torch.arange(k_len, device=device)[None, :]
    distance = (q_pos - k_pos).abs().float()  # (q_len, k_len)
    return -alibi_slopes(n_heads).to(device)[:, None, None] * distance
