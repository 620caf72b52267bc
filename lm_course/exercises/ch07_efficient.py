"""Chapter 7 (efficient attention, long context): reference solutions and checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch07_efficient as ex
    ex.check_block_local_mask(block_local_mask)

The four exercises: a block-local attention mask; attention computed over tiles of keys
with an online softmax (the idea of FlashAttention), never holding all the scores;
the repetition of key/value heads in grouped-query attention; and the bytes of a
key/value cache. The hidden cases reach realistic sizes: a thousand positions, blocks
that do and do not divide the length, scores in the thousands, Llama-sized caches. What
every check also holds an answer to (types, dtypes, inputs left alone, no built-in
shortcut) is in :mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .checker import Case, CheckResult, Forbid, ForbiddenOperation, run_cases

__all__ = [
    "solution_block_local_mask",
    "solution_tiled_attention",
    "solution_repeat_kv",
    "solution_kv_cache_bytes",
    "check_block_local_mask",
    "check_tiled_attention",
    "check_repeat_kv",
    "check_kv_cache_bytes",
]


# ------------------------------------------------------------------ reference solutions


def solution_block_local_mask(n: int, block: int) -> Tensor:
    """Causal block-local mask ``(n, n)``, boolean: query ``i`` sees key ``j`` when
    ``j <= i`` and both lie in the same block of ``block`` positions.

    The blocks are ``0 .. block-1``, ``block .. 2*block-1``, and so on; the last one may
    be shorter. Unlike a sliding window, the first query of a block sees only itself.
    """
    i = torch.arange(n)[:, None]  # query positions, a column
    j = torch.arange(n)[None, :]  # key positions, a row
    return (j <= i) & (i // block == j // block)


def solution_tiled_attention(
    q: Tensor, k: Tensor, v: Tensor, block_size: int
) -> Tensor:
    """``softmax(q k^T / sqrt(d_k)) v``, computed ``block_size`` keys at a time.

    Args:
        q: queries ``(..., q_len, d_k)``.
        k: keys ``(..., k_len, d_k)``.
        v: values ``(..., k_len, d_v)``.
        block_size: keys per tile.

    Returns:
        ``(..., q_len, d_v)``, the dtype of ``q``. At no time does a tensor of scores
        hold more than ``block_size`` keys per query.

    For every query it keeps the largest score so far ``m``, the sum ``l`` of
    ``exp(score - m)`` and the weighted sum ``acc`` of values; a tile that raises the
    maximum rescales both sums by ``exp(m_old - m_new)``.
    """
    scale = 1.0 / math.sqrt(q.size(-1))
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    l = torch.zeros(*q.shape[:-1], 1, dtype=q.dtype)  # noqa: E741 (the paper's name)
    acc = torch.zeros(*q.shape[:-1], v.size(-1), dtype=q.dtype)
    for start in range(0, k.size(-2), block_size):
        k_tile = k[..., start : start + block_size, :]
        scores = q @ k_tile.transpose(-2, -1) * scale  # (..., q_len, block_size)
        m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))
        p = torch.exp(scores - m_new)
        rescale = torch.exp(m - m_new)  # 0 at the first tile, where m is -inf
        l = l * rescale + p.sum(dim=-1, keepdim=True)  # noqa: E741
        acc = acc * rescale + p @ v[..., start : start + block_size, :]
        m = m_new
    return acc / l


def solution_repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """``(batch, n_kv_heads, seq, d_head)`` -> ``(batch, n_kv_heads * n_rep, seq,
    d_head)``: key/value head ``j`` serves query heads ``j * n_rep`` to
    ``(j + 1) * n_rep - 1``, so it appears ``n_rep`` times in a row.

    ``repeat_interleave`` along the head axis does exactly that; ``repeat`` would tile
    the heads instead (``0, 1, 0, 1`` rather than ``0, 0, 1, 1``).
    """
    return x.repeat_interleave(n_rep, dim=1)


def solution_kv_cache_bytes(
    n_layer: int,
    n_kv_head: int,
    d_head: int,
    length: int,
    batch_size: int,
    bytes_per_number: int,
) -> int:
    """Bytes of a key/value cache: an ``int``.

    Every layer stores a key *and* a value vector of ``n_kv_head * d_head`` numbers for
    each of the ``length`` tokens of each of the ``batch_size`` sequences.
    """
    numbers = 2 * n_layer * batch_size * length * n_kv_head * d_head
    return numbers * bytes_per_number


# ------------------------------------------------------------------------- checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_block_local_mask(
    fn: Callable[[int, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n, block)`` against :func:`solution_block_local_mask`.

    Small masks to follow by hand; blocks that divide the length and blocks that do not
    (the last block is shorter); a block of 1 (each token sees itself) and one longer
    than the sequence (a causal mask); then 1000 positions in blocks of 64.
    """
    cases = [
        Case("n = 4, block = 2", (4, 2)),
        Case("n = 6, block = 3", (6, 3)),
        Case("n = 7, block = 3 (the last block holds one position)", (7, 3)),
        Case("n = 5, block = 1 (each token sees only itself)", (5, 1)),
        Case("n = 5, block = 8 (one block: a causal mask)", (5, 8)),
        Case("n = 128, block = 32 (the block divides n)", (128, 32)),
        Case("n = 100, block = 30 (the block does not divide n)", (100, 30)),
        Case("n = 1000, block = 64", (1000, 64)),
    ]
    return run_cases(
        "block_local_mask", fn, solution_block_local_mask, cases, verbose=verbose
    )


_SOFTMAX = Forbid(
    "softmax",
    "softmin",
    "logsumexp",
    "scaled_dot_product",
    "multi_head_attention",
    why="keep the running maximum and sums yourself (a built-in softmax or attention "
    "is what your function is compared against)",
)


class _TileGuard(TorchFunctionMode):
    """Refuse any tensor larger than ``limit`` numbers: the whole score matrix."""

    def __init__(self, limit: int, block_size: int) -> None:
        super().__init__()
        self.limit, self.block_size = limit, block_size

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, tuple | list) else (out,):
            if isinstance(tensor, Tensor) and tensor.numel() > self.limit:
                raise ForbiddenOperation(
                    f"your function made a tensor of shape {tuple(tensor.shape)} "
                    f"({getattr(func, '__name__', func)}): more than block_size="
                    f"{self.block_size} scores per query at once. The point of the "
                    "exercise is never to hold all the scores: loop over tiles of keys"
                )
        return out


def _run_tiled(
    fn: Callable[..., Tensor], q: Tensor, k: Tensor, v: Tensor, block_size: int
) -> Tensor:
    """One case of the tiled-attention check, with its size limit and input check."""
    if fn is solution_tiled_attention:  # the reference needs no guard
        return fn(q, k, v, block_size)
    before = [t.clone() for t in (q, k, v)]
    per_query = max(block_size, q.size(-1), v.size(-1))
    limit = max(q.shape[:-1].numel() * per_query, k.numel(), v.numel())
    with _SOFTMAX.active(), _TileGuard(limit, block_size):
        out = fn(q, k, v, block_size)
    for name, old, new in zip("qkv", before, (q, k, v)):
        if not torch.equal(old.nan_to_num(), new.nan_to_num()):
            raise ForbiddenOperation(
                f"your function changed its argument `{name}` in place; the exercise "
                "asks for a new result and leaves its inputs as they were"
            )
    return out


def check_tiled_attention(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(q, k, v, block_size)`` against :func:`solution_tiled_attention`.

    Cases: one tile, tiles that divide the keys and tiles that do not, tiles of one
    key; a query whose largest score arrives in a late tile (the sums must be
    rescaled); scores in the thousands (every tile must subtract its maximum); 8 heads
    over 1000 keys in tiles of 64; cross-attention with ``d_v != d_k``; float64. The
    built-in softmax and attention functions are switched off, and so is any tensor
    with more than ``block_size`` scores per query.
    """
    g = _gen(7)

    def rand(*shape: int, scale: float = 1.0) -> Tensor:
        return scale * torch.randn(*shape, generator=g)

    late = rand(1, 1, 3, 4), rand(1, 1, 12, 4), rand(1, 1, 12, 2)
    late[1][..., 10, :] = 4 * late[0][..., 0, :]  # query 0's best key sits in tile 3
    cases = [
        Case(
            "2 queries, 3 keys, one tile of 4",
            (rand(1, 1, 2, 4), rand(1, 1, 3, 4), rand(1, 1, 3, 4), 4),
        ),
        Case(
            "4 queries, 8 keys in tiles of 4 (the tile divides the keys)",
            (rand(1, 2, 4, 8), rand(1, 2, 8, 8), rand(1, 2, 8, 8), 4),
        ),
        Case(
            "5 queries, 7 keys in tiles of 3 (the last tile holds one key)",
            (rand(2, 1, 5, 4), rand(2, 1, 7, 4), rand(2, 1, 7, 4), 3),
        ),
        Case("a query whose best key is in the last tile but one", (*late, 4)),
        Case(
            "9 keys in tiles of 1",
            (rand(1, 1, 3, 4), rand(1, 1, 9, 4), rand(1, 1, 9, 4), 1),
        ),
        Case(
            "scores in the thousands (q and k scaled by 40), 50 keys in tiles of 8",
            (
                rand(2, 2, 10, 16, scale=40.0),
                rand(2, 2, 50, 16, scale=40.0),
                rand(2, 2, 50, 8),
                8,
            ),
            atol=1e-4,
            rtol=1e-4,
        ),
        Case(
            "2 sequences, 8 heads, 200 queries over 1000 keys of 64 in tiles of 64",
            (rand(2, 8, 200, 64), rand(2, 8, 1000, 64), rand(2, 8, 1000, 64), 64),
        ),
        Case(
            "cross-attention: 30 queries over 100 keys, d_k = 16, d_v = 24, tiles of "
            "32",
            (rand(3, 4, 30, 16), rand(3, 4, 100, 16), rand(3, 4, 100, 24), 32),
        ),
        Case(
            "3-D inputs (no head axis): 20 queries over 90 keys, tiles of 16",
            (rand(2, 20, 8), rand(2, 90, 8), rand(2, 90, 8), 16),
        ),
        Case(
            "float64 inputs, 40 keys in tiles of 16 (the result stays float64)",
            tuple(
                torch.randn(1, 2, n, 8, generator=g, dtype=torch.float64)
                for n in (5, 40, 40)
            )
            + (16,),
        ),
    ]
    return run_cases(
        "tiled_attention",
        fn,
        solution_tiled_attention,
        cases,
        call=_run_tiled,
        verbose=verbose,
    )


def _arange(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Distinct numbers 0, 1, 2, ...: a failure shows which entry ended up where."""
    return torch.arange(math.prod(shape), dtype=dtype).view(shape)


def check_repeat_kv(
    fn: Callable[[Tensor, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, n_rep)`` against :func:`solution_repeat_kv`.

    ``arange`` inputs, so that a failure shows which head went where: tiling the heads
    instead of repeating each one fails from 2 key/value heads on. Then one shared head
    for 8 query heads (MQA), 8 groups of 8 heads of 128 over 70 tokens (the shape of
    Llama 2 70B), ``n_rep = 1``, a non-contiguous input, float16 and int64.
    """
    cases = [
        Case("x of shape (1, 2, 3, 2), n_rep = 2", (_arange(1, 2, 3, 2), 2)),
        Case("x of shape (2, 3, 2, 2), n_rep = 3", (_arange(2, 3, 2, 2), 3)),
        Case("x of shape (2, 4, 5, 3), n_rep = 1", (_arange(2, 4, 5, 3), 1)),
        Case(
            "one key/value head for 8 query heads (MQA): x (2, 1, 5, 8), n_rep = 8",
            (_arange(2, 1, 5, 8), 8),
        ),
        Case(
            "8 key/value heads of 128 over 70 tokens, n_rep = 8 (Llama 2 70B)",
            (_arange(1, 8, 70, 128), 8),
        ),
        Case(
            "a non-contiguous x: arange(2, 6, 4, 8).transpose(1, 2), shape (2, 4, 6, "
            "8), n_rep = 2",
            (_arange(2, 6, 4, 8).transpose(1, 2), 2),
        ),
        Case(
            "a float16 x of shape (1, 2, 3, 4), n_rep = 4",
            (_arange(1, 2, 3, 4, dtype=torch.float16), 4),
        ),
        Case(
            "an int64 x of shape (3, 2, 2, 2), n_rep = 2",
            (_arange(3, 2, 2, 2, dtype=torch.long), 2),
        ),
    ]
    return run_cases("repeat_kv", fn, solution_repeat_kv, cases, verbose=verbose)


def check_kv_cache_bytes(fn: Callable[..., int], verbose: bool = True) -> CheckResult:
    """Check ``fn(n_layer, n_kv_head, d_head, length, batch_size, bytes_per_number)``.

    Cases: a small cache to count by hand; Llama 2 7B in float16 at 4096 tokens (2 GiB
    per sequence); Llama 2 70B with its 8 key/value heads and with all 64; multi-query
    attention; a batch of 8; an 8-bit cache; an empty one. The answer is an ``int``.
    """
    cases = [
        Case("1 layer, 1 head of 4, 3 tokens, 1 sequence, float32", (1, 1, 4, 3, 1, 4)),
        Case(
            "2 layers, 4 heads of 8, 10 tokens, 3 sequences, float32",
            (2, 4, 8, 10, 3, 4),
        ),
        Case(
            "Llama 2 7B: 32 layers, 32 heads of 128, 4096 tokens, float16",
            (32, 32, 128, 4096, 1, 2),
        ),
        Case(
            "Llama 2 70B: 80 layers, 8 key/value heads of 128, 4096 tokens, float16",
            (80, 8, 128, 4096, 1, 2),
        ),
        Case(
            "the same 70B model with all 64 heads cached (multi-head attention)",
            (80, 64, 128, 4096, 1, 2),
        ),
        Case(
            "multi-query attention: 24 layers, 1 head of 64, 2048 tokens, float16",
            (24, 1, 64, 2048, 1, 2),
        ),
        Case(
            "a batch of 8 sequences of 32768 tokens, 32 layers, 8 heads of 128, "
            "float16",
            (32, 8, 128, 32768, 8, 2),
        ),
        Case(
            "an 8-bit cache: 32 layers, 8 heads of 128, 8192 tokens",
            (32, 8, 128, 8192, 1, 1),
        ),
        Case("an empty cache: 0 tokens", (12, 12, 64, 0, 1, 4)),
    ]
    return run_cases(
        "kv_cache_bytes", fn, solution_kv_cache_bytes, cases, verbose=verbose
    )
