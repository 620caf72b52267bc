"""Sparse attention: which pairs a pattern keeps, what it can see, and what it costs.

Full causal attention scores every (query, key) pair with ``key <= query``: about
``T^2 / 2`` pairs for ``T`` tokens. A *sparse* pattern keeps fewer pairs:

* **sliding window** (local attention,
  :func:`~lm_course.attention.sliding_window_mask`): the last ``window`` positions;
* **block-local** (:func:`block_local_mask`): the earlier positions of the query's own
  block of ``block`` tokens;
* **strided** (:func:`strided_mask`): every ``stride``-th position back;
* **local + strided** (:func:`local_strided_mask`): the two together, the "strided"
  pattern of the Sparse Transformer (Child et al., 2019);
* **global tokens** (:func:`global_tokens_mask`): a window, plus the first ``n_global``
  positions that every query sees (Longformer's global attention, Beltagy et al., 2020).

A mask alone saves nothing: dense attention with a mask still scores all ``T^2`` pairs
and throws most away. The saving needs code that never computes the dropped blocks:
:func:`block_sparse_attention` scores only the ``(block x block)`` tiles a layout keeps,
and :func:`sliding_window_attention` is its banded special case, linear in ``T``.

What a pattern cannot see in one layer it may see in two: information hops from key to
query once per layer. :func:`reachable` follows the hops.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lm_course.attention.masks import query_key_positions
from lm_course.checks import check_int, check_mask, check_qkv

__all__ = [
    "strided_mask",
    "block_local_mask",
    "local_strided_mask",
    "global_tokens_mask",
    "reachable",
    "block_layout",
    "block_sparse_attention",
    "sliding_window_attention",
]

Keep = Callable[[Tensor, Tensor], Tensor]


# ---------------------------------------------------------------------------- masks


def strided_mask(
    seq: int,
    stride: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Causal strided mask ``(seq, k_len)``: keys ``0, stride, 2 * stride, ...`` back.

    Query ``i`` sees key ``j <= i`` when ``i - j`` is a multiple of ``stride`` (itself
    included). ``k_len`` and the query positions follow
    :func:`~lm_course.attention.causal_mask`.
    """
    check_int("stride", stride, minimum=1)
    q_pos, k_pos = query_key_positions(seq, k_len, device)
    return (k_pos <= q_pos) & ((q_pos - k_pos) % stride == 0)


def block_local_mask(
    seq: int,
    block: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Causal block-local mask ``(seq, k_len)``: earlier positions of the same block.

    The positions are cut into blocks ``0..block-1``, ``block..2*block-1``, ...; query
    ``i`` sees key ``j <= i`` when both lie in one block. The first query of a block
    sees only itself, however close the previous block is: a window that slides has no
    such edge.
    """
    check_int("block", block, minimum=1)
    q_pos, k_pos = query_key_positions(seq, k_len, device)
    return (k_pos <= q_pos) & (q_pos // block == k_pos // block)


def local_strided_mask(
    seq: int,
    window: int,
    stride: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The last ``window`` positions, plus every ``stride``-th one before them.

    The Sparse Transformer's strided pattern (Child et al., 2019) in one mask: with
    ``stride = window`` two layers connect every pair, at about ``window + T / stride``
    keys per query instead of ``T``.
    """
    check_int("window", window, minimum=1)
    q_pos, k_pos = query_key_positions(seq, k_len, device)
    local = q_pos - k_pos < window
    return strided_mask(seq, stride, k_len, device) | ((k_pos <= q_pos) & local)


def global_tokens_mask(
    seq: int,
    window: int,
    n_global: int,
    k_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """A sliding window plus ``n_global`` global positions at the start.

    Every query sees the last ``window`` positions and the first ``n_global`` positions
    of the sequence; those first positions see everything before them (in a decoder,
    that is all there is). Longformer's "global attention" (Beltagy et al., 2020): a few
    chosen tokens keep full attention, the rest stay local.
    """
    check_int("window", window, minimum=1)
    check_int("n_global", n_global, minimum=0)
    q_pos, k_pos = query_key_positions(seq, k_len, device)
    causal = k_pos <= q_pos
    return causal & ((q_pos - k_pos < window) | (k_pos < n_global))


def reachable(mask: Tensor, layers: int) -> Tensor:
    """Which positions can reach which after ``layers`` layers of the pattern ``mask``.

    Args:
        mask: square boolean ``(seq, seq)``; ``True`` = query may attend to key.
        layers: how many attention layers are stacked.

    Returns:
        Boolean ``(seq, seq)``: entry ``(i, j)`` is True when information at position
        ``j`` can reach position ``i`` through ``layers`` layers. The residual stream
        keeps each position's own information, so a position always reaches itself.
    """
    check_int("layers", layers, minimum=1)
    check_mask(mask, (mask.size(0), mask.size(0)), "mask")
    if mask.dim() != 2:
        raise ValueError(f"mask must be (seq, seq), got shape {tuple(mask.shape)}")
    one_hop = mask | torch.eye(mask.size(0), dtype=torch.bool, device=mask.device)
    step = one_hop.float()
    reach = step
    for _ in range(layers - 1):
        reach = ((step @ reach) > 0).float()  # i reads j, which already holds j's past
    return reach > 0


# ---------------------------------------------------------------------------- compute


def block_layout(mask: Tensor, block: int) -> Tensor:
    """The tiles a mask needs: ``(n_q_blocks, n_k_blocks)``, True where a pair is kept.

    ``mask`` is ``(q_len, k_len)``; a last, shorter block counts as a block.
    """
    check_int("block", block, minimum=1)
    q_len, k_len = mask.shape[-2:]
    nq, nk = math.ceil(q_len / block), math.ceil(k_len / block)
    padded = mask.new_zeros(nq * block, nk * block)
    padded[:q_len, :k_len] = mask
    return padded.view(nq, block, nk, block).any(dim=3).any(dim=1)


def block_sparse_attention(
    q: Tensor, k: Tensor, v: Tensor, layout: Tensor, block: int, keep: Keep | Tensor
) -> Tensor:
    """Attention that computes only the ``block x block`` tiles that ``layout`` keeps.

    Args:
        q, k, v: ``(batch, heads, seq, d_head)`` self-attention inputs.
        layout: boolean ``(n_blocks, n_blocks)`` with ``n_blocks = ceil(seq / block)``:
            query block ``i`` reads key block ``j`` when ``layout[i, j]``.
        block: the tile size.
        keep: the pairs kept inside the tiles: a rule ``keep(q_pos, k_pos)`` on
            broadcastable integer position tensors (so that no ``(seq, seq)`` mask is
            ever built), or, for small examples, a boolean ``(seq, seq)`` mask.

    Returns:
        ``(batch, heads, seq, d_head)``, equal to dense attention with the mask
        ``keep(i, j)`` when the layout covers every kept pair. The work is
        ``seq * (most blocks in a row) * block`` scores instead of ``seq^2``.
    """
    check_qkv(q, k, v)
    b, h, t, d = q.shape
    n = math.ceil(t / block)
    if layout.shape != (n, n) or layout.dtype != torch.bool:
        raise ValueError(
            f"layout must be a boolean ({n}, {n}) for seq={t} and block={block}, got "
            f"{layout.dtype} {tuple(layout.shape)}"
        )
    pad = n * block - t  # the last block is padded; its extra keys are never kept
    q, k, v = (torch.nn.functional.pad(z, (0, 0, 0, pad)) for z in (q, k, v))
    # For each query block, the list of key blocks it reads, padded to the longest
    # list (the padding points at block 0 and is masked out).
    width = max(int(layout.sum(1).max()), 1)
    order = torch.sort(layout.int(), dim=1, descending=True, stable=True).indices
    cols, used = order[:, :width], layout.gather(1, order[:, :width])  # (n, width)
    cols = cols.masked_fill(~used, 0)

    def gather(z: Tensor) -> Tensor:  # (b, h, n*block, d) -> (b, h, n, width*block, d)
        return z.view(b, h, n, block, -1)[:, :, cols].flatten(3, 4)

    q_pos = torch.arange(n * block, device=q.device).view(n, block, 1)
    k_pos = cols[:, :, None] * block + torch.arange(block, device=q.device)
    k_pos = k_pos.view(n, 1, width * block)
    real = (k_pos < t) & used.repeat_interleave(block, 1)[:, None, :]
    if isinstance(keep, Tensor):
        check_mask(keep, (t, t), "keep")
        mask = keep.expand(t, t)
        keep = lambda i, j: mask[i.clamp(max=t - 1), j.clamp(max=t - 1)]  # noqa: E731
    allowed = keep(q_pos, k_pos) & real  # (n, block, width * block)
    scores = q.view(b, h, n, block, d) @ gather(k).transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1) * allowed.any(-1, keepdim=True)
    out = weights @ gather(v)  # (b, h, n, block, d)
    return out.flatten(2, 3)[:, :, :t]


def sliding_window_attention(
    q: Tensor, k: Tensor, v: Tensor, window: int, block: int | None = None
) -> Tensor:
    """Causal sliding-window attention in ``O(seq * window)`` time and memory.

    ``q, k, v`` are ``(batch, heads, seq, d_head)``; returns the same shape, equal to
    dense attention with :func:`~lm_course.attention.sliding_window_mask`. Tiles of
    ``block`` positions (default ``window``): each query block reads its own block and
    the ``ceil(window / block)`` blocks before it.
    """
    check_int("window", window, minimum=1)
    block = window if block is None else check_int("block", block, minimum=1)
    n = math.ceil(q.size(2) / block)
    reach = math.ceil(window / block)
    i = torch.arange(n, device=q.device)
    layout = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] <= reach)

    def keep(q_pos: Tensor, k_pos: Tensor) -> Tensor:
        return (k_pos <= q_pos) & (q_pos - k_pos < window)

    return block_sparse_attention(q, k, v, layout, block, keep)
