"""Chapter 2 (attention, the mathematics): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch02_attention as ex
    ex.check_stable_softmax(stable_softmax)

Each ``check_*`` runs seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. The cases go from small ones a reader can follow by hand to
realistic sizes: 16 heads, sequences past 64 positions, lengths that a window or a head
count divides and ones it does not, scores of 1000 and -inf, padding that holds NaN.
What every check also holds an answer to (dtype, inputs left alone, no built-in
shortcut) is in :mod:`lm_course.exercises.checker`. The solutions are written for
reading: the book shows them folded in its exercises appendix.

Mask convention (as in :mod:`lm_course.attention`): a boolean tensor, ``True`` means
"this query may attend to this key".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .checker import Case, CheckResult, Forbid, run_cases

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
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d_k)) v``, optionally masked.

    Args:
        q: queries ``(..., q_len, d_k)``.
        k: keys ``(..., k_len, d_k)``.
        v: values ``(..., k_len, d_v)``.
        mask: optional boolean ``(..., q_len, k_len)`` (broadcastable); ``True`` = may
            attend. Every query may attend to at least one key.

    Returns:
        ``(..., q_len, d_v)``, the dtype of ``q``: for each query, the weighted average
        of the values. A masked key does not count, whatever its key and value hold.
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

    Row ``i`` is query position ``i``; it may see itself and every earlier position,
    never a later one (lower triangle, diagonal included).
    """
    return torch.ones(n, n, dtype=torch.bool).tril()


def solution_split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, n_heads, seq, d_head)``: cut into heads.

    With ``d_head = d_model / n_heads``, head ``h`` gets features ``h * d_head`` to
    ``(h + 1) * d_head - 1`` of every token. The ``view`` cuts the feature axis into
    ``(n_heads, d_head)``; the transpose then moves the head axis in front of the
    sequence axis, so that each head holds a whole sequence. The result keeps the dtype
    of ``x``.
    """
    batch, seq, d_model = x.shape
    d_head = d_model // n_heads
    return x.view(batch, seq, n_heads, d_head).transpose(1, 2)


def solution_merge_heads(x: Tensor) -> Tensor:
    """``(batch, n_heads, seq, d_head)`` -> ``(batch, seq, n_heads * d_head)``.

    The inverse of :func:`solution_split_heads`: put the sequence axis back in front of
    the head axis, then concatenate the heads' features (``reshape`` copies, because the
    transposed tensor is no longer contiguous).
    """
    batch, n_heads, seq, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, seq, n_heads * d_head)


def solution_sliding_window_mask(n: int, window: int) -> Tensor:
    """Causal local-attention mask ``(n, n)``: query ``i`` sees keys ``i - window + 1``
    to ``i``.

    Each query attends to at most ``window`` positions, itself included, so the cost
    per query is ``window`` instead of ``i + 1``. ``window >= n`` gives the causal mask.
    """
    i = torch.arange(n)[:, None]  # query positions, a column
    j = torch.arange(n)[None, :]  # key positions, a row
    return (j <= i) & (i - j < window)


def solution_alibi_bias(n_heads: int, seq_len: int) -> Tensor:
    """ALiBi score bias, float32 ``(n_heads, seq_len, seq_len)``: ``-m_h * |i - j|``.

    ``bias[h, i, j] = -m_h * |i - j|``. The slopes of ``n_heads`` heads (a power of
    two) are the geometric sequence
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


_SOFTMAX = Forbid(
    "softmax",
    "softmin",
    why="write softmax yourself from exp, max and sum (a built-in softmax, log_softmax "
    "included, is what your function is compared against)",
)


def _softmax_case(description: str, x: Tensor, dim: int = -1) -> Case:
    """A softmax case whose tolerance follows the precision of ``x``'s dtype.

    A correct answer loses about ``max|x| * eps`` of relative precision (a logsumexp
    rounds at the scores' magnitude), so scores of 1000 get a wider tolerance than
    scores of 1, and float16 a wider one than float32.
    """
    eps = torch.finfo(x.dtype).eps
    finite = x[x.isfinite()]
    magnitude = max(1.0, finite.abs().max().item()) if finite.numel() else 1.0
    return Case(
        description, (x,), {"dim": dim}, atol=8 * eps, rtol=1e-5 + 2 * eps * magnitude
    )


def check_stable_softmax(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, dim=-1)`` against :func:`solution_stable_softmax`.

    Cases: small scores to follow by hand; scores around +1000 and -1000 (``exp``
    overflows to ``inf`` in float32 above about 88.7 and underflows to 0); a batch whose
    rows sit at +1000 and -1000 (one maximum over the whole tensor is not enough);
    ``-inf`` padding; ties; a row of 50 000 scores (a vocabulary) and a (2, 16, 65, 65)
    block of attention scores; ``dim=0`` and a middle axis; float64 and float16 inputs,
    whose dtype the result keeps (in float16 ``exp`` overflows above 11). Every built-in
    softmax is switched off while ``fn`` runs.
    """
    g = _gen(0)
    heights = torch.cat(
        [
            1000 + 3 * torch.randn(1, 50, generator=g),
            -1000 + 3 * torch.randn(1, 50, generator=g),
        ]
    )
    padded = 5 * torch.randn(3, 70, generator=g)
    padded[0, 40:] = float("-inf")  # a row with 40 real scores and 30 padding
    padded[1, 1:] = float("-inf")  # a row with one real score
    cases = [
        _softmax_case("the scores [1., 2., 3.]", torch.tensor([1.0, 2.0, 3.0])),
        _softmax_case(
            "a (4, 6) batch of random scores", torch.randn(4, 6, generator=g)
        ),
        _softmax_case(
            "large scores [1000., 1001., 1002.] (exp overflows)",
            torch.tensor([1000.0, 1001.0, 1002.0]),
        ),
        _softmax_case(
            "very negative scores [-1000., -1001., -1003.] (exp underflows)",
            torch.tensor([-1000.0, -1001.0, -1003.0]),
        ),
        _softmax_case(
            "a (2, 50) batch: row 0 around +1000, row 1 around -1000 (each row needs "
            "its own maximum)",
            heights,
        ),
        _softmax_case(
            "a (3, 70) batch padded with -inf (row 1 has a single real score)", padded
        ),
        _softmax_case(
            "100 equal scores of 7.5 (a tie: 0.01 each)", torch.full((100,), 7.5)
        ),
        _softmax_case(
            "a row of 50 000 scores (a vocabulary)",
            5 * torch.randn(50_000, generator=g),
        ),
        _softmax_case(
            "attention scores of shape (2, 16, 65, 65)",
            4 * torch.randn(2, 16, 65, 65, generator=g),
        ),
        _softmax_case(
            "a (5, 3) matrix with dim=0 (each column is a distribution)",
            10 * torch.randn(5, 3, generator=g),
            dim=0,
        ),
        _softmax_case(
            "a (4, 70, 3) tensor with dim=1",
            10 * torch.randn(4, 70, 3, generator=g),
            dim=1,
        ),
        _softmax_case(
            "float64 scores up to 5000 (the result stays float64)",
            5000 * torch.rand(3, 80, generator=g, dtype=torch.float64),
        ),
        _softmax_case(
            "float16 scores up to 30 (in float16 exp overflows above 11; the result "
            "stays float16)",
            (30 * torch.rand(4, 40, generator=g)).half(),
        ),
    ]
    return run_cases(
        "stable_softmax",
        fn,
        solution_stable_softmax,
        cases,
        forbid=_SOFTMAX,
        verbose=verbose,
    )


def check_attention(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(q, k, v, mask=None)`` against :func:`solution_attention`.

    Cases: one query and key of size 2 (to follow by hand), more keys than queries
    (catches ``k @ q^T``), ``d_v != d_k`` (catches scaling by ``sqrt(d_v)``), a causal
    mask, a broadcast padding mask; then 2 sequences of 70 tokens in 16 heads of 64
    with a causal mask, cross-attention of 50 queries over 100 keys in 8 heads where the
    padded keys hold NaN (masked keys must not count, whatever they hold), scores in the
    hundreds, and float64 inputs. The built-in attention functions are switched off.
    """
    g = _gen(1)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g)

    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    padding = torch.tensor([[True, True, True, False], [True, True, True, True]])[
        :, None, :
    ]
    lengths = torch.tensor([100, 37, 1])
    key_padding = (torch.arange(100) < lengths[:, None])[
        :, None, None, :
    ]  # (3, 1, 1, 100)
    garbage_k = rand(3, 8, 100, 32).masked_fill(
        ~key_padding.transpose(-1, -2), float("nan")
    )
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
            "a batch of 2 padded sequences of 4 tokens (mask (2, 1, 4): the last key "
            "of the first sequence is padding)",
            (rand(2, 4, 8), rand(2, 4, 8), rand(2, 4, 2)),
            {"mask": padding},
        ),
        Case(
            "2 sequences of 70 tokens, 16 heads of d_head 64, causal mask (70, 70)",
            (rand(2, 16, 70, 64), rand(2, 16, 70, 64), rand(2, 16, 70, 64)),
            {"mask": torch.ones(70, 70, dtype=torch.bool).tril()},
        ),
        Case(
            "50 queries over 100 keys in 8 heads, 3 sequences of 100, 37 and 1 real "
            "keys (mask (3, 1, 1, 100)); the padded keys hold NaN, as uninitialised "
            "memory can",
            (rand(3, 8, 50, 32), garbage_k, rand(3, 8, 100, 32)),
            {"mask": key_padding},
        ),
        Case(
            "scores in the hundreds (q and k scaled by 20; a hand-written softmax must "
            "subtract the maximum)",
            (20 * rand(2, 30, 16), 20 * rand(2, 30, 16), rand(2, 30, 8)),
            atol=1e-4,
            rtol=1e-4,
        ),
        Case(
            "float64 inputs, 4 heads of 9 tokens (the result stays float64)",
            tuple(
                torch.randn(4, 9, 8, generator=g, dtype=torch.float64) for _ in range(3)
            ),
        ),
    ]
    return run_cases(
        "attention",
        fn,
        solution_attention,
        cases,
        forbid=Forbid(
            "scaled_dot_product",
            "multi_head_attention",
            why="write the formula yourself; the built-in attention is what your "
            "function is compared against",
        ),
        verbose=verbose,
    )


def check_causal_mask(fn: Callable[[int], Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(n)`` against :func:`solution_causal_mask`: a boolean ``(n, n)`` mask.

    Sizes 1, 2, 4 and 7, then 64, 65, 100 and 1000: a mask cut from a fixed buffer of 64
    positions fails past it.
    """
    cases = [Case(f"n = {n}", (n,)) for n in (1, 2, 4, 7, 64, 65, 100, 1000)]
    return run_cases("causal_mask", fn, solution_causal_mask, cases, verbose=verbose)


def _arange(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Distinct numbers 0, 1, 2, ...: a failure shows which entry ended up where."""
    return torch.arange(math.prod(shape), dtype=dtype).view(shape)


def check_split_heads(
    fn: Callable[[Tensor, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, n_heads)`` against :func:`solution_split_heads`.

    The inputs are ``arange`` tensors, so a failure message shows which features ended
    up in which head: a reshape without the transpose has the right shape but mixes
    tokens.
    Realistic sizes follow: 12 heads of 64 over 65 tokens, 16 heads (of 64 and of 6),
    float64 and integer inputs (the result keeps the dtype), and a non-contiguous input
    (the query part cut out of a fused ``(batch, seq, 3 * d_model)`` projection).
    """
    qkv = _arange(2, 11, 3 * 128)
    cases = [
        Case(
            "x = arange(8).view(1, 2, 4) (1 sequence, 2 tokens, d_model 4), 2 heads",
            (_arange(1, 2, 4), 2),
        ),
        Case("x = arange(48).view(2, 3, 8), 4 heads", (_arange(2, 3, 8), 4)),
        Case("x = arange(36).view(1, 6, 6), 3 heads", (_arange(1, 6, 6), 3)),
        Case("x = arange(24).view(2, 3, 4), 1 head", (_arange(2, 3, 4), 1)),
        Case("x of shape (2, 65, 768), 12 heads", (_arange(2, 65, 768), 12)),
        Case("x of shape (1, 9, 1024), 16 heads", (_arange(1, 9, 1024), 16)),
        Case("x of shape (3, 5, 96), 16 heads of 6", (_arange(3, 5, 96), 16)),
        Case(
            "a float64 x of shape (2, 7, 40), 8 heads",
            (_arange(2, 7, 40, dtype=torch.float64), 8),
        ),
        Case(
            "an int64 x of shape (2, 3, 12), 6 heads",
            (_arange(2, 3, 12, dtype=torch.long), 6),
        ),
        Case(
            "the queries cut out of a fused projection, qkv.split(128, dim=-1)[0] with "
            "qkv of shape (2, 11, 384) (not contiguous), 16 heads",
            (qkv.split(128, dim=-1)[0], 16),
        ),
    ]
    return run_cases("split_heads", fn, solution_split_heads, cases, verbose=verbose)


def check_merge_heads(
    fn: Callable[[Tensor], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x)`` against :func:`solution_merge_heads`, the inverse of split_heads.

    Contiguous inputs (what ``weights @ v`` returns) and the transposed output of
    split_heads, up to 16 heads of 64 over 65 tokens, float64 included.
    """
    cases = [
        Case(
            "x = arange(8).view(1, 2, 2, 2) (1 sequence, 2 heads, 2 tokens, d_head 2)",
            (_arange(1, 2, 2, 2),),
        ),
        Case("x = arange(48).view(2, 4, 3, 2)", (_arange(2, 4, 3, 2),)),
        Case(
            "x = split_heads(arange(36).view(1, 6, 6), 3): merging must give it back",
            (solution_split_heads(_arange(1, 6, 6), 3),),
        ),
        Case("x of shape (2, 16, 65, 64), contiguous", (_arange(2, 16, 65, 64),)),
        Case(
            "x = split_heads(x of shape (2, 70, 768), 12), not contiguous",
            (solution_split_heads(_arange(2, 70, 768), 12),),
        ),
        Case(
            "a float64 x of shape (3, 8, 5, 4)",
            (_arange(3, 8, 5, 4, dtype=torch.float64),),
        ),
    ]
    return run_cases("merge_heads", fn, solution_merge_heads, cases, verbose=verbose)


def check_sliding_window_mask(
    fn: Callable[[int, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n, window)`` against :func:`solution_sliding_window_mask`.

    Small windows to follow by hand; then 100 positions (past a buffer of 64), windows
    that divide the length (128 and 32) and ones that do not (100 and 30: a mask built
    from blocks of ``window`` positions fails), a window equal to the length and one
    longer than it.
    """
    cases = [
        Case("n = 1, window = 1", (1, 1)),
        Case("n = 4, window = 1 (each token sees only itself)", (4, 1)),
        Case("n = 5, window = 2", (5, 2)),
        Case("n = 7, window = 3", (7, 3)),
        Case(
            "n = 4, window = 10 (the window covers everything: a causal mask)", (4, 10)
        ),
        Case("n = 100, window = 64", (100, 64)),
        Case("n = 128, window = 32 (the window divides n)", (128, 32)),
        Case("n = 100, window = 30 (the window does not divide n)", (100, 30)),
        Case("n = 70, window = 70", (70, 70)),
    ]
    return run_cases(
        "sliding_window_mask", fn, solution_sliding_window_mask, cases, verbose=verbose
    )


def check_alibi_bias(
    fn: Callable[[int, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n_heads, seq_len)`` against :func:`solution_alibi_bias`.

    Head counts 1 to 16 (powers of two; slopes written out for 8 heads fail at 16) and
    lengths from 1 to 128. The result is float32, like the scores it is added to.
    """
    cases = [
        Case("1 head, 3 positions", (1, 3)),
        Case("2 heads, 4 positions", (2, 4)),
        Case("4 heads, 5 positions", (4, 5)),
        Case("8 heads, 6 positions (slopes 1/2 ... 1/256)", (8, 6)),
        Case("2 heads, 1 position", (2, 1)),
        Case("8 heads, 128 positions", (8, 128)),
        Case("16 heads, 100 positions (slopes 2^-0.5, 2^-1, ..., 2^-8)", (16, 100)),
    ]
    return run_cases(
        "alibi_bias", fn, solution_alibi_bias, cases, atol=1e-6, verbose=verbose
    )
