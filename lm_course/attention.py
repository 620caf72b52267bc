"""Scaled dot-product attention, attention masks and multi-head attention.

The formula the course builds everything else on (Vaswani et al., 2017)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head)) V

Every query is compared with *every* key (all pairs, a ``(q_len, k_len)`` score matrix),
the scores of one query are turned into a probability distribution by the softmax, and the
output is the matching weighted average of the values. Article 000 (sections 4.1-4.3)
drops the softmax and multiplies ``q_i`` and ``k_i`` element by element; the chapter on
attention shows with this module why neither shortcut is attention.

Mask convention used throughout the package: a **boolean** tensor where ``True`` means
"this query may attend to this key", broadcastable to ``(batch, heads, q_len, k_len)`` --
the same convention as :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "sliding_window_mask",
    "split_heads",
    "merge_heads",
    "check_heads",
    "MultiHeadAttention",
]

BACKENDS = ("sdpa", "manual")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    bias: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """Attention written out: ``softmax(q k^T / sqrt(d_head) + bias) v``.

    Args:
        q: queries ``(batch, heads, q_len, d_head)``.
        k: keys ``(batch, heads, k_len, d_head)``.
        v: values ``(batch, heads, k_len, d_v)``.
        mask: optional boolean mask broadcastable to ``(batch, heads, q_len, k_len)``;
            ``True`` = may attend.
        bias: optional finite additive score bias broadcastable to
            ``(batch, heads, q_len, k_len)`` (ALiBi, for example). Exclude positions with
            ``mask``, not with ``-inf`` in the bias.
        dropout_p: dropout probability applied to the attention weights when ``training``.
        training: whether dropout is active.

    Returns:
        ``(out, weights)``: ``out`` is ``(batch, heads, q_len, d_v)`` and ``weights`` is
        ``(batch, heads, q_len, k_len)`` (rows sum to 1), ready for a heat map.

    A query whose mask row is entirely ``False`` has nothing to attend to. Its weights
    are defined as all zeros, so its output is a zero vector and no NaN appears in the
    forward or backward pass -- the same result PyTorch's fused kernel gives.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k and v must be 4-D (batch, heads, seq, d_head); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}. "
            f"Use split_heads() to go from (batch, seq, d_model) to this layout."
        )
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
            f"for an additive float mask pass it as bias= instead"
        )
    scores = (
        q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    )  # (batch, heads, q_len, k_len)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        # The most negative finite float, not -inf: a fully masked row then gives a uniform
        # softmax instead of 0/0 = NaN, and we zero that row just below. In a partly masked
        # row exp(min - max) underflows to exactly 0, so the result equals the -inf version.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        has_any_key = mask.any(dim=-1, keepdim=True)
        weights = weights.masked_fill(~has_any_key, 0.0)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


# ---------------------------------------------------------------------------- masks


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def causal_mask(
    q_len: int, k_len: int | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Boolean causal mask ``(q_len, k_len)``: each query sees itself and the past.

    When ``q_len < k_len`` (decoding with a KV cache: the keys hold the past plus the new
    tokens) the queries are the *last* ``q_len`` positions, so query ``i`` sits at
    position ``k_len - q_len + i`` and may attend to keys ``0 .. k_len - q_len + i``.
    """
    _check_positive_int("q_len", q_len)
    k_len = q_len if k_len is None else _check_positive_int("k_len", k_len)
    if k_len < q_len:
        raise ValueError(
            f"k_len ({k_len}) must be >= q_len ({q_len}): the queries are the last q_len "
            f"of the k_len positions"
        )
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    k_pos = torch.arange(k_len, device=device)[None, :]
    return k_pos <= q_pos


def sliding_window_mask(
    seq: int,
    window: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Causal *local* attention mask ``(seq, k_len)``: each query sees the last ``window``
    positions, itself included.

    This is the "local attention" of articles 000 and 004: the cost per query is
    ``window`` instead of the whole prefix. ``k_len`` (default ``seq``) may exceed ``seq``
    for KV-cache decoding, with the same position convention as :func:`causal_mask`.
    """
    _check_positive_int("window", window)
    mask = causal_mask(seq, k_len, device=device)
    k_len = mask.size(1)
    q_pos = torch.arange(k_len - seq, k_len, device=device)[:, None]
    k_pos = torch.arange(k_len, device=device)[None, :]
    return mask & (q_pos - k_pos < window)


def padding_mask(lengths_or_keep: Tensor, max_len: int | None = None) -> Tensor:
    """Mask out padding keys; returns a boolean ``(batch, 1, 1, k_len)`` mask.

    Args:
        lengths_or_keep: either the true lengths ``(batch,)`` (integer; the first
            ``lengths[b]`` tokens of row ``b`` are real), or a ``keep`` mask
            ``(batch, k_len)``, boolean or 0/1 integer, where ``True``/``1`` marks a real
            token (the ``attention_mask`` convention of Hugging Face tokenizers -- the
            opposite of ``key_padding_mask`` in :class:`torch.nn.MultiheadAttention`).
        max_len: padded length when lengths are given (default: the largest length).

    The result broadcasts over heads and queries: padding *keys* are hidden from every
    query. Padding *queries* still produce outputs; ignore them in the loss.
    """
    if not isinstance(lengths_or_keep, Tensor):
        raise TypeError(
            f"lengths_or_keep must be a tensor of lengths (batch,) or a keep mask "
            f"(batch, k_len), got {type(lengths_or_keep).__name__}"
        )
    x = lengths_or_keep
    if x.dim() == 2:
        if x.dtype != torch.bool:
            if x.is_floating_point() or not ((x == 0) | (x == 1)).all():
                raise ValueError(
                    "a 2-D keep mask must be boolean or contain only 0 and 1 "
                    "(1 = real token, 0 = padding)"
                )
            x = x.bool()
        return x[:, None, None, :]
    if x.dim() == 1:
        if x.is_floating_point() or x.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got dtype {x.dtype}")
        if (x < 0).any():
            raise ValueError(f"lengths must be >= 0, got {x.tolist()}")
        longest = int(x.max()) if x.numel() else 0
        max_len = longest if max_len is None else max_len
        if max_len < longest:
            raise ValueError(
                f"max_len ({max_len}) is shorter than the longest length ({longest})"
            )
        keep = torch.arange(max_len, device=x.device)[None, :] < x[:, None]
        return keep[:, None, None, :]
    raise ValueError(
        f"lengths_or_keep must be 1-D lengths (batch,) or a 2-D keep mask (batch, k_len), "
        f"got shape {tuple(x.shape)}"
    )


# ---------------------------------------------------------------------------- heads


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, heads, seq, d_model // heads)``."""
    if x.dim() != 3:
        raise ValueError(f"x must be (batch, seq, d_model), got shape {tuple(x.shape)}")
    b, s, d = x.shape
    check_heads(d, n_heads)
    return x.view(b, s, n_heads, d // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(batch, heads, seq, d_head)`` -> ``(batch, seq, heads * d_head)``; undoes split_heads."""
    b, h, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, h * dh)


def _valid_head_counts(d_model: int) -> list[int]:
    return [h for h in range(1, min(d_model, 64) + 1) if d_model % h == 0]


def check_heads(d_model: int, n_heads: int) -> None:
    """Raise a ValueError that explains how to fix ``d_model % n_heads != 0``."""
    _check_positive_int("d_model", d_model)
    _check_positive_int("n_heads", n_heads)
    if d_model % n_heads != 0:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: each head gets "
            f"d_model / n_heads = {d_model / n_heads:.3g} dimensions, which must be a whole "
            f"number. Valid head counts for d_model={d_model}: {_valid_head_counts(d_model)}"
        )


# ---------------------------------------------------------------------------- module


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, split into heads, attend, merge, project back.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of heads, each of width ``d_head = d_model // n_heads``.
        dropout: dropout on the attention weights and on the output (training only).
        bias: whether the projections have biases.
        backend: ``"sdpa"`` calls PyTorch's fused
            :func:`torch.nn.functional.scaled_dot_product_attention`; ``"manual"`` calls
            the written-out :func:`scaled_dot_product_attention`. They agree to ~1e-6.
        is_cross: cross-attention (queries from ``x``, keys and values from ``context``)
            instead of self-attention.

    Set ``keep_weights = True`` to store the attention weights of the last call in
    ``last_weights`` ``(batch, heads, q_len, k_len)``; that call then runs the manual path.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        bias: bool = False,
        backend: str = "sdpa",
        is_cross: bool = False,
    ) -> None:
        super().__init__()
        check_heads(d_model, n_heads)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout, self.backend, self.is_cross = dropout, backend, is_cross
        if is_cross:
            self.q_proj = nn.Linear(d_model, d_model, bias=bias)
            self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=bias)
        else:
            # One fused matmul for q, k and v is faster than three small ones.
            self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.keep_weights = False
        self.last_weights: Tensor | None = None

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        attn_bias: Tensor | None = None,
        is_causal: bool = False,
        rope: nn.Module | None = None,
        cache: object | None = None,
        layer_idx: int = 0,
    ) -> Tensor:
        """Attend from ``x`` ``(batch, q_len, d_model)``; returns ``(batch, q_len, d_model)``.

        Args:
            context: ``(batch, k_len, d_model)`` keys/values source (cross-attention only).
            mask: boolean mask broadcastable to ``(batch, heads, q_len, k_len)``.
            attn_bias: finite additive bias broadcastable to the same shape (ALiBi).
            is_causal: add a causal mask (queries are the last ``q_len`` key positions).
            rope: a :class:`~lm_course.positional.RotaryEmbedding`; rotates q and k.
            cache: a KV cache with ``pos`` and ``update(layer_idx, k, v) -> (k, v)`` (see
                :class:`~lm_course.models.gpt.KVCache`); new keys/values are appended and
                the queries attend to everything stored so far.
            layer_idx: which layer of the cache this module reads and writes.
        """
        if x.dim() != 3 or x.size(-1) != self.d_model:
            raise ValueError(
                f"x must be (batch, seq, d_model={self.d_model}), got shape {tuple(x.shape)}"
            )
        if self.is_cross:
            if context is None:
                raise ValueError("cross-attention needs context= (the encoder output)")
            q = split_heads(self.q_proj(x), self.n_heads)
            k, v = (
                split_heads(z, self.n_heads) for z in self.kv_proj(context).chunk(2, -1)
            )
        else:
            if context is not None:
                raise ValueError("context= is only for cross-attention (is_cross=True)")
            q, k, v = (
                split_heads(z, self.n_heads) for z in self.qkv(x).chunk(3, dim=-1)
            )
        offset = 0 if cache is None else cache.pos
        if rope is not None:
            q, k = rope(q, offset), rope(k, offset)
        if cache is not None:
            k, v = cache.update(layer_idx, k, v)
        q_len, k_len = q.size(2), k.size(2)

        if is_causal and q_len == k_len and mask is None and attn_bias is None:
            causal_fast = (
                True  # the hot path: fused causal kernel, no mask tensor at all
            )
        else:
            causal_fast = False
            if (
                is_causal and q_len > 1
            ):  # one query at the end of the cache sees every key
                causal = causal_mask(q_len, k_len, device=x.device)
                mask = causal if mask is None else mask & causal

        dropout_p = self.dropout if self.training else 0.0
        if self.backend == "manual" or self.keep_weights:
            if causal_fast:
                mask = causal_mask(q_len, k_len, device=x.device)
            out, weights = scaled_dot_product_attention(
                q,
                k,
                v,
                mask=mask,
                bias=attn_bias,
                dropout_p=dropout_p,
                training=self.training,
            )
            if self.keep_weights:
                self.last_weights = weights.detach()
        elif causal_fast:
            out = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout_p, is_causal=True
            )
        else:
            attn_mask = mask
            if attn_bias is not None:
                # The fused kernel takes one float mask: the bias, with -inf where masked.
                attn_mask = attn_bias.to(q.dtype)
                if mask is not None:
                    attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout_p
            )
        out = self.proj(merge_heads(out))
        if dropout_p > 0.0:
            out = F.dropout(out, p=dropout_p, training=True)
        return out
