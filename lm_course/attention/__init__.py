"""Attention itself: scaled dot-product attention and the multi-head layer.

The formula the course builds everything else on (Vaswani et al., 2017)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head)) V

Every query is compared with *every* key (all pairs, a ``(q_len, k_len)`` score matrix),
the scores of one query are turned into a probability distribution by the softmax, and
the output is the matching weighted average of the values. Article 000 (sections
4.1-4.3) drops the softmax and multiplies ``q_i`` and ``k_i`` element by element; the
chapter on attention shows with this module why neither shortcut is attention.

Mask convention used throughout the package: a **boolean** tensor where ``True`` means
"this query may attend to this key", broadcastable to ``(batch, heads, q_len, k_len)``,
the convention of :func:`torch.nn.functional.scaled_dot_product_attention`. An additive
float bias (ALiBi, say) goes in a separate argument; a float or integer mask is refused,
so a 0/1 mask can never be added to the scores by mistake.

The rest of the package, one idea per module (chapter 7):

* :mod:`~lm_course.attention.masks` -- causal, sliding-window and padding masks (also
  importable from here);
* :mod:`~lm_course.attention.sparse` -- strided, block-local and global-token patterns,
  what a stack of layers can see through them, and attention that computes only the
  blocks a pattern keeps;
* :mod:`~lm_course.attention.flash` -- the idea of FlashAttention: tiles and an online
  softmax, never the whole score matrix;
* :mod:`~lm_course.attention.grouped` -- grouped-query and multi-query attention, whose
  heads share keys and values;
* :mod:`~lm_course.attention.cost` -- measuring time, peak memory and their growth.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lm_course.attention.masks import causal_mask, padding_mask, sliding_window_mask
from lm_course.checks import (
    check_attention_call,
    check_bias,
    check_bool,
    check_choice,
    check_int,
    check_mask,
    check_number,
    check_qkv,
    describe,
)

if TYPE_CHECKING:
    from lm_course.models.kvcache import KVCache

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "sliding_window_mask",
    "split_heads",
    "merge_heads",
    "check_heads",
    "MultiHeadAttention",
    "fused_attention",
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
            ``True`` = may attend. A float or integer mask is refused.
        bias: optional finite additive score bias broadcastable to
            ``(batch, heads, q_len, k_len)`` (ALiBi, for example). Exclude positions
            with ``mask``, not with ``-inf`` in the bias.
        dropout_p: dropout probability on the attention weights when ``training``.
        training: whether dropout is active.

    Returns:
        ``(out, weights)``: ``out`` is ``(batch, heads, q_len, d_v)`` and ``weights`` is
        ``(batch, heads, q_len, k_len)`` (rows sum to 1), ready for a heat map.

    A query whose mask row is entirely ``False`` has nothing to attend to. Its weights
    are defined as all zeros, so its output is a zero vector and no NaN appears in the
    forward or backward pass -- the same result PyTorch's fused kernel gives.
    """
    shape = check_qkv(q, k, v)
    if mask is not None:
        check_mask(mask, shape, "mask", bias_name="bias")
    if bias is not None:
        check_bias(bias, shape, "bias")
    check_number("dropout_p", dropout_p, minimum=0, maximum=1, strict_max=True)
    return _attend(q, k, v, mask, bias, dropout_p if training else 0.0)


def _attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    bias: Tensor | None,
    dropout_p: float,
) -> tuple[Tensor, Tensor]:
    """The formula itself, on arguments already checked."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (b, h, q_len, k_len)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        # The most negative finite float, not -inf: a fully masked row then gives a
        # uniform softmax instead of 0/0 = NaN, and we zero that row just below. In a
        # partly masked row exp(min - max) underflows to exactly 0, so the result
        # equals the -inf version.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        has_any_key = mask.any(dim=-1, keepdim=True)
        weights = weights.masked_fill(~has_any_key, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


# ---------------------------------------------------------------------------- heads


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, heads, seq, d_model // heads)``."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x must be (batch, seq, d_model), got {describe(x)}")
    check_heads(x.size(-1), n_heads)
    return _split_heads(x, n_heads)


def _split_heads(x: Tensor, n_heads: int) -> Tensor:
    b, s, d = x.shape
    return x.view(b, s, n_heads, d // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(batch, heads, seq, d_head)`` -> ``(batch, seq, heads * d_head)``.

    Undoes :func:`split_heads`.
    """
    b, h, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, h * dh)


def _valid_head_counts(d_model: int) -> list[int]:
    return [h for h in range(1, min(d_model, 64) + 1) if d_model % h == 0]


def check_heads(d_model: int, n_heads: int) -> None:
    """Raise a ValueError that explains how to fix ``d_model % n_heads != 0``."""
    check_int("d_model", d_model, minimum=1)
    check_int("n_heads", n_heads, minimum=1)
    if d_model % n_heads != 0:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: each head gets "
            f"d_model / n_heads = {d_model / n_heads:.3g} dimensions, which must be a "
            f"whole number. Valid head counts for d_model={d_model}: "
            f"{_valid_head_counts(d_model)}"
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
    ``last_weights`` ``(batch, heads, q_len, k_len)``; that call then runs the manual
    path.

    Inputs are checked at each call (shapes and dtypes only: no wait for a GPU). A model
    that checks its own inputs sets ``check_inputs = False`` on its layers, so that one
    call is checked once, at the model's boundary.

    ``forward`` is four steps: :meth:`project_heads`, positions and cache,
    :meth:`attend`, the output projection. A variant replaces one step: grouped-query
    attention (:mod:`lm_course.attention.grouped`) makes fewer key/value heads.
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
        check_number("dropout", dropout, minimum=0, maximum=1, strict_max=True)
        check_bool("bias", bias)
        check_choice("backend", backend, BACKENDS)
        check_bool("is_cross", is_cross)
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
        self.check_inputs = True

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        attn_bias: Tensor | None = None,
        is_causal: bool = False,
        rope: nn.Module | None = None,
        cache: KVCache | None = None,
        layer_idx: int = 0,
    ) -> Tensor:
        """Attend from ``x`` ``(batch, q_len, d_model)``; returns the same shape.

        Args:
            context: ``(batch, k_len, d_model)`` keys/values source (cross-attention).
            mask: boolean mask broadcastable to ``(batch, heads, q_len, k_len)``.
            attn_bias: finite additive bias broadcastable to the same shape (ALiBi).
            is_causal: add a causal mask (queries are the last ``q_len`` key positions).
            rope: a :class:`~lm_course.positional.RotaryEmbedding`; rotates q and k.
            cache: a :class:`~lm_course.models.kvcache.KVCache`; new keys and values
                are appended and the queries attend to everything stored so far.
            layer_idx: which layer of the cache this module reads and writes.
        """
        if self.check_inputs:
            self._check_call(x, context, mask, attn_bias, cache, layer_idx)
        q, k, v = self.project_heads(x, context)
        offset = 0 if cache is None else cache.pos
        if rope is not None:
            q, k = rope(q, offset), rope(k, offset)
        if cache is not None:
            k, v = cache.update(layer_idx, k, v)
        out = self.attend(q, k, v, mask=mask, attn_bias=attn_bias, is_causal=is_causal)
        out = self.proj(merge_heads(out))
        if self.training and self.dropout > 0.0:
            out = F.dropout(out, p=self.dropout, training=True)
        return out

    def _check_call(
        self,
        x: Tensor,
        context: Tensor | None,
        mask: Tensor | None,
        attn_bias: Tensor | None,
        cache: KVCache | None,
        layer_idx: int,
    ) -> None:
        """Shapes and dtypes of one call, in :mod:`lm_course.checks`' wording."""
        check_attention_call(self, x, context, mask, attn_bias, cache, layer_idx)

    def project_heads(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values, each ``(batch, heads, len, d_head)``.

        ``x`` is ``(batch, q_len, d_model)``; keys and values come from ``x`` too, or
        from ``context`` ``(batch, k_len, d_model)`` in cross-attention.
        """
        if self.is_cross:
            q = _split_heads(self.q_proj(x), self.n_heads)
            kv = self.kv_proj(context).chunk(2, dim=-1)
            k, v = (_split_heads(z, self.n_heads) for z in kv)
        else:
            qkv = self.qkv(x).chunk(3, dim=-1)
            q, k, v = (_split_heads(z, self.n_heads) for z in qkv)
        return q, k, v

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        mask: Tensor | None = None,
        attn_bias: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Attention over heads: ``q`` ``(batch, heads, q_len, d_head)`` and ``k``,
        ``v`` ``(batch, heads, k_len, d_head)`` give ``(batch, heads, q_len, d_head)``.

        Masks and bias as in :meth:`forward`; ``is_causal`` places the queries at the
        last ``q_len`` of the ``k_len`` positions.
        """
        q_len, k_len = q.size(2), k.size(2)
        # The hot path: the fused kernel's own causal mode, with no mask tensor at all.
        causal_fast = (
            is_causal and q_len == k_len and mask is None and attn_bias is None
        )
        written_out = self.backend == "manual" or self.keep_weights
        # (One query at the end of the cache sees every key: it needs no mask.)
        if is_causal and q_len > 1 and (written_out or not causal_fast):
            causal = causal_mask(q_len, k_len, device=q.device)
            mask = causal if mask is None else mask & causal

        dropout_p = self.dropout if self.training else 0.0
        if written_out:
            out, weights = _attend(q, k, v, mask, attn_bias, dropout_p)
            if self.keep_weights:
                self.last_weights = weights.detach()
            return out
        if causal_fast:
            return fused_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        attn_mask = mask
        if attn_bias is not None:
            # The fused kernel takes one float mask: the bias, -inf where masked.
            attn_mask = attn_bias
            if mask is not None:
                attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
        return fused_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
) -> Tensor:
    """PyTorch's fused attention, computed in float32 on a CPU even for bfloat16 inputs.

    ``q`` ``(batch, heads, q_len, d_head)``, ``k`` and ``v`` ``(batch, heads, k_len,
    d_head)``; returns ``(batch, heads, q_len, d_head)`` in ``q``'s dtype. Arguments as
    :func:`torch.nn.functional.scaled_dot_product_attention`; a float ``attn_mask`` is
    cast to the dtype the kernel computes in.

    Under bfloat16 autocast the projections hand attention bfloat16 tensors. The CPU's
    fused kernel is slow in bfloat16 where it matters here: at the reference shape
    (context 64, heads of width 32) its backward pass took about five times float32's,
    which cancelled what the bfloat16 matrix products gain. Attention is a small part of
    the FLOPs at this context, so float32 costs little there and keeps the softmax
    exact. On a GPU, bfloat16 is the fast path and is kept.
    """
    upcast = q.device.type == "cpu" and q.dtype == torch.bfloat16
    compute = torch.float32 if upcast else q.dtype
    if attn_mask is not None and attn_mask.is_floating_point():
        attn_mask = attn_mask.to(compute)
    if not upcast:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal
        )
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(
            q.float(),
            k.float(),
            v.float(),
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
        )
    return out.to(q.dtype)
