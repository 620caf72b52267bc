"""The idea behind FlashAttention: attention in tiles, with an online softmax.

Written-out attention holds the whole ``(q_len, k_len)`` score matrix, and then the
same-sized matrix of weights: memory grows with the square of the sequence.
FlashAttention (Dao et al., 2022) never holds it. It walks over the keys one tile at a
time and keeps, for every query, three running quantities:

* ``m`` -- the largest score seen so far (for a softmax that cannot overflow);
* ``l`` -- the sum of ``exp(score - m)`` so far (the softmax's denominator);
* ``acc`` -- the sum of ``exp(score - m) * value`` so far (its numerator).

When a new tile brings a larger maximum ``m_new``, what was summed with the old one is
rescaled by ``exp(m - m_new)``; at the end ``acc / l`` is exactly the softmax-weighted
average. This is the *online softmax* (Milakov and Gimelshein, 2018). The result equals
full attention up to float rounding, but only a ``(block_q, block_k)`` tile of scores
exists at any time.

The real kernel gets its speed from keeping the tiles in a GPU's fast on-chip memory;
this module shows the arithmetic only, in plain PyTorch, so it is slower than
:func:`torch.nn.functional.scaled_dot_product_attention` (which, on a GPU, *is* such a
kernel) -- but it saves the same memory, and the chapter measures that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lm_course.checks import check_bool, check_int, check_qkv

__all__ = ["flash_attention"]


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    block_q: int = 64,
    block_k: int = 64,
) -> Tensor:
    """Softmax attention computed tile by tile, never holding all the scores.

    Args:
        q: queries ``(batch, heads, q_len, d_head)``.
        k: keys ``(batch, heads, k_len, d_head)``.
        v: values ``(batch, heads, k_len, d_v)``.
        causal: hide future keys; the queries are the last ``q_len`` of the ``k_len``
            positions, as in :func:`~lm_course.attention.causal_mask`. Key tiles that
            lie wholly in a query tile's future are skipped, not computed.
        block_q: queries per tile.
        block_k: keys per tile.

    Returns:
        ``(batch, heads, q_len, d_v)``: ``softmax(q k^T / sqrt(d_head)) v``, equal to
        :func:`~lm_course.attention.scaled_dot_product_attention` to float rounding.
    """
    check_qkv(q, k, v)
    check_bool("causal", causal)
    check_int("block_q", block_q, minimum=1)
    check_int("block_k", block_k, minimum=1)
    q_len, k_len = q.size(2), k.size(2)
    if causal and k_len < q_len:
        raise ValueError(
            f"causal attention needs k_len ({k_len}) >= q_len ({q_len}): the queries "
            "are the last q_len of the k_len positions"
        )
    scale = 1.0 / math.sqrt(q.size(-1))
    out = q.new_empty(*q.shape[:-1], v.size(-1))
    for q0 in range(0, q_len, block_q):
        q_tile = q[:, :, q0 : q0 + block_q] * scale  # (b, h, bq, d)
        q_pos = torch.arange(q0, q0 + q_tile.size(2), device=q.device) + k_len - q_len
        m = q.new_full((*q_tile.shape[:-1], 1), float("-inf"))  # running maximum
        l = q.new_zeros(*q_tile.shape[:-1], 1)  # noqa: E741 (the paper's name)
        acc = q.new_zeros(*q_tile.shape[:-1], v.size(-1))  # running numerator
        last_key = int(q_pos[-1]) + 1 if causal else k_len
        for k0 in range(0, last_key, block_k):
            k1 = min(k0 + block_k, last_key)
            scores = q_tile @ k[:, :, k0:k1].transpose(-2, -1)  # (b, h, bq, bk)
            if causal:
                future = torch.arange(k0, k1, device=q.device) > q_pos[:, None]
                scores = scores.masked_fill(future, float("-inf"))
            m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))
            p = torch.exp(scores - m_new)  # this tile's weights, unnormalised
            rescale = torch.exp(m - m_new)  # what the old sums were measured against
            l = l * rescale + p.sum(dim=-1, keepdim=True)  # noqa: E741
            acc = acc * rescale + p @ v[:, :, k0:k1]
            m = m_new
        out[:, :, q0 : q0 + block_q] = acc / l
    return out
