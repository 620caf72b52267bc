"""Chapter 2 (attention, the mathematics): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch02_attention as ex
    ex.check_stable_softmax(stable_softmax)

Each ``check_*`` runs small seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. A checker never raises. The solutions are written for reading:
the book shows them folded in its exercises appendix.

Mask convention (as in :mod:`lm_course.attention`): a boolean tensor, ``True`` means
"this query may attend to this key".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .checker import Case, CheckResult, run_cases

__all__ = [
    "solution_stable_softmax",
    "solution_attention",
    "solution_causal_mask",
    "solution_split_heads",
    "solution_merge_heads",
    "solution_sliding_window_mask",
    "solution_alibi_bias",
    "check_stable_softmax",
    "check_attention",
    "check_causal_mask",
    "check_split_heads",
    "check_merge_heads",
    "check_sliding_window_mask",
    "check_alibi_bias",
]


# ------------------------------------------------------------------ reference solutions


def solution_stable_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``x`` along ``dim`` that never overflows.

    Args:
        x: scores of any shape, floating point.
        dim: the axis whose entries become a probability distribution.

    Returns:
        A tensor of the shape of ``x``: non-negative, summing to 1 along ``dim``.

    ``softmax(x) = softmax(x - c)`` for any constant ``c``, because ``exp(-c)`` cancels
    between numerator and denominator. With ``c = max(x)`` the largest exponent is
    ``exp(0) = 1``: nothing overflows, and the denominator is at least 1, so no 0/0.
    """
    shifted = x - x.amax(dim=dim, keepdim=True)
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)


def solution_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d_k)) v``, with an optional mask.

    Args:
        q: queries ``(..., q_len, d_k)``.
        k: keys ``(..., k_len, d_k)``.
        v: values ``(..., k_len, d_v)``.
        mask: optional boolean ``(..., q_len, k_len)`` (broadcastable); ``True`` = may
            attend. Every query may attend to at least one key.

    Returns:
        ``(..., q_len, d_v)``: for each query, the weighted average of the values.
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., q_len, k_len): all pairs
    if mask is not None:
        # Masked scores must get exp(score) = 0 *before* normalising, so that the
        # remaining weights of the row still sum to 1.
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # over the keys: one distribution per query
    return weights @ v


def solution_causal_mask(n: int) -> Tensor:
    """Boolean causal mask ``(n, n)``: ``mask[i, j]`` is True when ``j <= i``.

    Row ``i`` is query position ``i``; it may see itself and every earlier position, never
    a later one (lower triangle, diagonal included).
    """
    return torch.ones(n, n, dtype=torch.bool).tril()


def solution_split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, n_heads, seq, d_head)``, ``d_head = d_model / n_heads``.

    Head ``h`` gets features ``h * d_head .. (h + 1) * d_head - 1`` of every token. The
    ``view`` cuts the feature axis into ``(n_heads, d_head)``; the transpose then moves the
    head axis in front of the sequence axis, so that each head holds a whole sequence.
    """
    batch, seq, d_model = x.shape
    d_head = d_model // n_heads
    return x.view(batch, seq, n_heads, d_head).transpose(1, 2)


def solution_merge_heads(x: Tensor) -> Tensor:
    """``(batch, n_heads, seq, d_head)`` -> ``(batch, seq, n_heads * d_head)``.

    The inverse of :func:`solution_split_heads`: put the sequence axis back in front of the
    head axis, then concatenate the heads' features (``reshape`` copies, because the
    transposed tensor is no longer contiguous).
    """
    batch, n_heads, seq, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, seq, n_heads * d_head)


def solution_sliding_window_mask(n: int, window: int) -> Tensor:
    """Causal local-attention mask ``(n, n)``: query ``i`` sees keys ``i - window + 1 .. i``.

    Each query attends to at most ``window`` positions, itself included, so the cost per
    query is ``window`` instead of ``i + 1``. ``window >= n`` gives the causal mask.
    """
    i = torch.arange(n)[:, None]  # query positions, a column
    j = torch.arange(n)[None, :]  # key positions, a row
    return (j <= i) & (i - j < window)


def solution_alibi_bias(n_heads: int, seq_len: int) -> Tensor:
    """ALiBi score bias ``(n_heads, seq_len, seq_len)``: ``bias[h, i, j] = -m_h * |i - j|``.

    The slopes of ``n_heads`` heads (a power of two) are the geometric sequence
    ``m_h = 2 ** (-8 * h / n_heads)`` for ``h = 1 .. n_heads``: 8 heads get
    ``1/2, 1/4, ..., 1/256``. Added to the attention scores, the bias makes distant keys
    less attractive, steeply in the first heads and gently in the last ones.
    """
    slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1) / n_heads)  # (n_heads,)
    pos = torch.arange(seq_len)
    distance = (pos[:, None] - pos[None, :]).abs().float()  # (seq_len, seq_len)
    return -slopes[:, None, None] * distance


# ------------------------------------------------------------------------- checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def _softmax_forbidden() -> Iterator[None]:
    """Make the built-in softmaxes raise while a reader's softmax runs.

    The exercise is to write softmax from ``exp``, ``max`` and ``sum``; calling the
    built-in one would pass every case and teach nothing.
    """

    def refuse(*args: Any, **kwargs: Any) -> Tensor:
        raise RuntimeError(
            "write softmax yourself with exp, max and sum: torch.softmax is what your "
            "function is compared against"
        )

    saved = (torch.softmax, F.softmax, Tensor.softmax)
    torch.softmax = refuse  # type: ignore[assignment]
    F.softmax = refuse  # type: ignore[assignment]
    Tensor.softmax = refuse  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        torch.softmax, F.softmax, Tensor.softmax = saved  # type: ignore[misc]


def _require_bool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a mask function so that a non-boolean mask is reported, not silently cast."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mask = fn(*args, **kwargs)
        if isinstance(mask, Tensor) and mask.dtype != torch.bool:
            raise TypeError(
                f"a mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}"
            )
        return mask

    return wrapped


def check_stable_softmax(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, dim=-1)`` against :func:`solution_stable_softmax`.

    The hidden cases include scores around 1000 (``exp`` overflows to ``inf`` in float32
    above about 88.7), very negative scores (``exp`` underflows to 0), several rows and
    ``dim=0``. The built-in softmaxes are switched off while ``fn`` runs.
    """
    g = _gen(0)
    cases = [
        Case("the scores [1., 2., 3.]", (torch.tensor([1.0, 2.0, 3.0]),)),
        Case(
            "a (4, 6) batch of random scores, softmax along the last dim",
            (torch.randn(4, 6, generator=g),),
        ),
        Case(
            "large scores [1000., 1001., 1002.] (exp overflows)",
            (torch.tensor([1000.0, 1001.0, 1002.0]),),
        ),
        Case(
            "very negative scores [-1000., -1001., -1003.] (exp underflows)",
            (torch.tensor([-1000.0, -1001.0, -1003.0]),),
        ),
        Case(
            "a (3, 5) batch of scores up to 500", (500 * torch.rand(3, 5, generator=g),)
        ),
        Case(
            "a (5, 3) matrix with dim=0 (each column is a distribution)",
            (10 * torch.randn(5, 3, generator=g),),
            {"dim": 0},
        ),
    ]

    def guarded(*args: Any, **kwargs: Any) -> Tensor:
        with _softmax_forbidden():
            return fn(*args, **kwargs)

    candidate = guarded if callable(fn) else fn
    return run_cases(
        "stable_softmax",
        candidate,
        solution_stable_softmax,
        cases,
        atol=1e-6,
        rtol=1e-5,
        verbose=verbose,
    )


def check_attention(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(q, k, v, mask=None)`` against :func:`solution_attention`.

    Cases: one query and key of size 2 (easy to follow by hand), more queries than keys
    (catches ``k @ q^T``), a batch with ``d_v != d_k``, a causal mask and a padding mask.
    """
    g = _gen(1)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g)

    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    padding = torch.tensor([[True, True, True, False], [True, True, True, True]])[
        :, None, :
    ]
    cases = [
        Case(
            "a 2-token sequence, d_k = d_v = 2 (no batch)",
            (rand(2, 2), rand(2, 2), rand(2, 2)),
        ),
        Case(
            "3 queries and 5 keys/values, d_k = 4, d_v = 4",
            (rand(3, 4), rand(5, 4), rand(5, 4)),
        ),
        Case(
            "a batch of 2, 4 queries, 6 keys, d_k = 8, d_v = 3",
            (rand(2, 4, 8), rand(2, 6, 8), rand(2, 6, 3)),
        ),
        Case(
            "5 tokens, d_k = 16, with a causal mask (5, 5)",
            (3 * rand(5, 16), rand(5, 16), rand(5, 4)),
            {"mask": causal},
        ),
        Case(
            "a batch of 2 padded sequences of 4 tokens (mask (2, 1, 4): the last key of the "
            "first sequence is padding)",
            (rand(2, 4, 8), rand(2, 4, 8), rand(2, 4, 2)),
            {"mask": padding},
        ),
    ]
    return run_cases("attention", fn, solution_attention, cases, verbose=verbose)


def check_causal_mask(fn: Callable[[int], Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(n)`` against :func:`solution_causal_mask` for a few sizes (boolean masks only)."""
    cases = [Case(f"n = {n}", (n,)) for n in (1, 2, 4, 7)]
    candidate = _require_bool(fn) if callable(fn) else fn
    return run_cases(
        "causal_mask", candidate, solution_causal_mask, cases, verbose=verbose
    )


def check_split_heads(
    fn: Callable[[Tensor, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, n_heads)`` against :func:`solution_split_heads`.

    The inputs are ``arange`` tensors, so a failure message shows which features ended up
    in which head: a reshape without the transpose has the right shape but mixes tokens.
    """
    cases = [
        Case(
            "x = arange(8).view(1, 2, 4) (1 sequence, 2 tokens, d_model 4), 2 heads",
            (torch.arange(8.0).view(1, 2, 4), 2),
        ),
        Case(
            "x = arange(48).view(2, 3, 8), 4 heads",
            (torch.arange(48.0).view(2, 3, 8), 4),
        ),
        Case(
            "x = arange(36).view(1, 6, 6), 3 heads",
            (torch.arange(36.0).view(1, 6, 6), 3),
        ),
        Case(
            "x = arange(24).view(2, 3, 4), 1 head",
            (torch.arange(24.0).view(2, 3, 4), 1),
        ),
    ]
    return run_cases("split_heads", fn, solution_split_heads, cases, verbose=verbose)


def check_merge_heads(
    fn: Callable[[Tensor], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x)`` against :func:`solution_merge_heads` (the inverse of split_heads)."""
    cases = [
        Case(
            "x = arange(8).view(1, 2, 2, 2) (1 sequence, 2 heads, 2 tokens, d_head 2)",
            (torch.arange(8.0).view(1, 2, 2, 2),),
        ),
        Case("x = arange(48).view(2, 4, 3, 2)", (torch.arange(48.0).view(2, 4, 3, 2),)),
        Case(
            "x = split_heads(arange(36).view(1, 6, 6), 3): merging must give it back",
            (solution_split_heads(torch.arange(36.0).view(1, 6, 6), 3),),
        ),
    ]
    return run_cases("merge_heads", fn, solution_merge_heads, cases, verbose=verbose)


def check_sliding_window_mask(
    fn: Callable[[int, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n, window)`` against :func:`solution_sliding_window_mask`."""
    cases = [
        Case("n = 4, window = 1 (each token sees only itself)", (4, 1)),
        Case("n = 5, window = 2", (5, 2)),
        Case("n = 7, window = 3", (7, 3)),
        Case(
            "n = 4, window = 10 (the window covers everything: a causal mask)", (4, 10)
        ),
    ]
    candidate = _require_bool(fn) if callable(fn) else fn
    return run_cases(
        "sliding_window_mask",
        candidate,
        solution_sliding_window_mask,
        cases,
        verbose=verbose,
    )


def check_alibi_bias(
    fn: Callable[[int, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n_heads, seq_len)`` against :func:`solution_alibi_bias` (powers of two)."""
    cases = [
        Case("1 head, 3 positions", (1, 3)),
        Case("2 heads, 4 positions", (2, 4)),
        Case("4 heads, 5 positions", (4, 5)),
        Case("8 heads, 6 positions (slopes 1/2 ... 1/256)", (8, 6)),
    ]
    return run_cases(
        "alibi_bias",
        fn,
        solution_alibi_bias,
        cases,
        atol=1e-6,
        rtol=1e-5,
        verbose=verbose,
    )
