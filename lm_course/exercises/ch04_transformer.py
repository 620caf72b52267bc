"""Chapter 4 (the Transformer): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch04_transformer as ex
    ex.check_rms_norm(my_rms_norm)

The exercises are the chapter's pieces written by hand: the two normalisations of
section 4, multi-head self-attention with its output matrix ``W^O`` (section 2), the
pre-LN block (section 5) and the mean attention distance of section 10. Each
``check_*`` runs seeded hidden cases against the ``solution_*`` of the same name, from
small ones a reader can follow by hand to realistic sizes (widths of 512 and 768, 12
heads, 128 positions), with the inputs that tell a right answer from a nearly right one:
features far from zero, nearly constant vectors where ``eps`` decides, more keys than
queries, attention maps that look both ways. What every check also holds an answer to
(dtype, inputs left alone, a clear report) is in :mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..attention import MultiHeadAttention
from ..models.blocks import MLP
from .checker import Case, CheckResult, Forbid, run_cases

__all__ = [
    "solution_rms_norm",
    "solution_layer_norm",
    "solution_multi_head_attention",
    "solution_pre_ln_block",
    "solution_mean_attention_distance",
    "check_rms_norm",
    "check_layer_norm",
    "check_multi_head_attention",
    "check_pre_ln_block",
    "check_mean_attention_distance",
]


# ------------------------------------------------------------------ reference solutions


def solution_rms_norm(x: Tensor, gain: Tensor, eps: float = 1e-5) -> Tensor:
    """RMSNorm of the vectors of ``x``: ``gain * x / sqrt(mean(x^2) + eps)``.

    Args:
        x: ``(..., d)``, floating point.
        gain: ``(d,)``, the learned gain.
        eps: added to the mean square, inside the square root.

    Returns:
        ``(..., d)`` in the dtype of ``x``. The mean is over the last axis only: each
        vector is normalised on its own.
    """
    mean_square = x.pow(2).mean(dim=-1, keepdim=True)  # (..., 1)
    return gain * x / torch.sqrt(mean_square + eps)


def solution_layer_norm(
    x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5
) -> Tensor:
    """LayerNorm of the vectors of ``x``.

    ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Args:
        x: ``(..., d)``, floating point.
        gamma, beta: ``(d,)``, the learned gain and bias.
        eps: added to the variance, inside the square root.

    Returns:
        ``(..., d)``. The variance is the *biased* one (divide by ``d``, not ``d - 1``),
        computed from the centred values (two passes), which stays accurate when the
        features sit far from zero.
    """
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    var = centred.pow(2).mean(dim=-1, keepdim=True)
    return gamma * centred / torch.sqrt(var + eps) + beta


def solution_multi_head_attention(
    x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor, n_heads: int
) -> Tensor:
    """Causal multi-head self-attention with the output matrix ``W^O``.

    Args:
        x: ``(batch, seq, d_model)``.
        w_q, w_k, w_v: ``(d_model, d_model)``; ``x @ w_q`` holds the queries of every
            head side by side, head ``i`` in columns ``i * d_head .. (i + 1) * d_head``
            with ``d_head = d_model // n_heads``.
        w_o: ``(d_model, d_model)``, applied to the heads' outputs concatenated.
        n_heads: number of heads; divides ``d_model``.

    Returns:
        ``(batch, seq, d_model)``: ``Concat(head_1 .. head_h) @ w_o``, where head ``i``
        is ``softmax(q_i k_i^T / sqrt(d_head) + causal mask) v_i``.
    """
    batch, seq, d_model = x.shape
    d_head = d_model // n_heads

    def heads(w: Tensor) -> Tensor:  # (batch, seq, d) -> (batch, heads, seq, d_head)
        return (x @ w).view(batch, seq, n_heads, d_head).transpose(1, 2)

    q, k, v = heads(w_q), heads(w_k), heads(w_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (batch, heads, seq, seq)
    future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # (batch, heads, seq, d_head)
    concat = out.transpose(1, 2).reshape(batch, seq, d_model)
    return concat @ w_o


def solution_pre_ln_block(
    x: Tensor,
    attn: Callable[[Tensor], Tensor],
    mlp: Callable[[Tensor], Tensor],
    ln1: Callable[[Tensor], Tensor],
    ln2: Callable[[Tensor], Tensor],
) -> Tensor:
    """One pre-LN Transformer block: ``x + attn(ln1(x))``, then ``+ mlp(ln2(.))``.

    Args:
        x: ``(batch, seq, d_model)``, the residual stream.
        attn, mlp: the two sub-layers, each ``(batch, seq, d_model)`` -> same shape.
        ln1, ln2: the normalisation before each sub-layer.

    Returns:
        ``(batch, seq, d_model)``. The residual stream itself is never normalised: each
        sub-layer reads a normalised copy and *adds* its output.
    """
    x = x + attn(ln1(x))
    return x + mlp(ln2(x))


def solution_mean_attention_distance(weights: Tensor) -> Tensor:
    """How far each head looks.

    The mean over batch and queries of ``sum_j w_ij |i - j|``.

    Args:
        weights: attention weights ``(batch, heads, seq, seq)``, each row (query ``i``)
            a distribution over the keys ``j``; causal or not.

    Returns:
        ``(heads,)`` in the dtype of ``weights``: for each head, the expected distance
        between a query and the key it attends to, averaged over queries and batch.
    """
    seq = weights.size(-1)
    pos = torch.arange(seq, device=weights.device)
    distance = (pos[:, None] - pos[None, :]).abs().to(weights.dtype)  # (seq, seq)
    per_query = (weights * distance).sum(dim=-1)  # (batch, heads, seq)
    return per_query.mean(dim=(0, 2))


# ------------------------------------------------------------------------- checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _vectors(g: torch.Generator, *shape: int, offset: float = 0.0) -> Tensor:
    return offset + 3 * torch.randn(*shape, generator=g)


def _norm_cases(g: torch.Generator, params: Callable[..., tuple]) -> list[Case]:
    """Cases shared by the two normalisations; ``params(d)`` gives gain (and bias)."""
    nearly_constant = 2.0 + 1e-4 * torch.randn(3, 16, generator=g)
    far_from_zero = 1000.0 + torch.randn(4, 32, generator=g)
    return [
        Case(
            "the vector [1., 2., 3., 4.] (gain 1)",
            (torch.tensor([1.0, 2, 3, 4]), *params(4, plain=True)),
        ),
        Case(
            "a (2, 5, 8) batch of vectors around 3",
            (_vectors(g, 2, 5, 8, offset=3), *params(8)),
        ),
        Case(
            "8 sequences of 64 positions of width 512",
            (_vectors(g, 8, 64, 512), *params(512)),
        ),
        Case(
            "a (2, 128, 768) batch with eps=1e-6",
            (_vectors(g, 2, 128, 768), *params(768)),
            {"eps": 1e-6},
        ),
        Case(
            "nearly constant vectors around 2 (spread 1e-4: eps decides the result; "
            "float32 keeps 4 digits of the spread)",
            (nearly_constant, *params(16)),
            atol=1e-3,
            rtol=1e-3,
        ),
        Case(
            "tiny vectors (values around 1e-4: eps decides the result)",
            (1e-4 * torch.randn(3, 16, generator=g), *params(16)),
        ),
        Case(
            "features around 1000 with a spread of 1 (float32 keeps 7 digits)",
            (far_from_zero, *params(32)),
            atol=1e-3,
            rtol=1e-3,
        ),
        Case(
            "float64 vectors (the result stays float64)",
            (
                torch.randn(3, 24, generator=g, dtype=torch.float64),
                *(p.double() for p in params(24)),
            ),
        ),
    ]


def check_rms_norm(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, gain, eps=1e-5)`` against :func:`solution_rms_norm`.

    Cases: a 4-vector by hand; batches of widths 8, 512 and 768 (eps=1e-6); vectors
    whose values are around 1e-4, where ``eps`` inside the square root decides; features
    around 1000; float64. Catches the article's L2 formula (no ``sqrt(d)``), ``eps``
    outside the root, a mean over the wrong axis, a forgotten gain and centring.
    """
    g = _gen(0)

    def params(d: int, plain: bool = False) -> tuple[Tensor]:
        return (torch.ones(d) if plain else 1 + 0.2 * torch.randn(d, generator=g),)

    cases = _norm_cases(g, params)
    return run_cases("rms_norm", fn, solution_rms_norm, cases, verbose=verbose)


def check_layer_norm(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, gamma, beta, eps=1e-5)`` against :func:`solution_layer_norm`.

    Cases as for :func:`check_rms_norm`, with a bias. Catches the unbiased variance
    (``torch.var``'s default), ``eps`` outside the root, no centring, a forgotten gain
    or bias, and ``E[x^2] - E[x]^2``, which loses the spread of features around 1000.
    """
    g = _gen(1)

    def params(d: int, plain: bool = False) -> tuple[Tensor, Tensor]:
        if plain:
            return torch.ones(d), torch.zeros(d)
        return 1 + 0.2 * torch.randn(d, generator=g), 0.5 * torch.randn(d, generator=g)

    cases = _norm_cases(g, params)
    return run_cases("layer_norm", fn, solution_layer_norm, cases, verbose=verbose)


_FUSED_ATTENTION = Forbid(
    "scaled_dot_product",
    "multi_head_attention",
    "_native_multi_head",
    why="write the heads, the scores, the mask and W^O yourself (PyTorch's fused "
    "attention is what the chapter's package uses)",
)


def _mha_case(
    g: torch.Generator, description: str, batch: int, seq: int, d: int, heads: int
) -> Case:
    x = torch.randn(batch, seq, d, generator=g)
    weights = tuple(torch.randn(d, d, generator=g) / math.sqrt(d) for _ in range(4))
    return Case(description, (x, *weights, heads), atol=1e-4, rtol=1e-4)


def check_multi_head_attention(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, w_q, w_k, w_v, w_o, n_heads)`` (causal self-attention).

    Cases: one head of width 4 over 3 positions; 2 heads (where the order of features
    matters); 4 heads of 16 over 33 positions; 8 heads of 64 over 128 positions; 12
    heads of 64 (width 768) over 50 positions. Catches a missing ``W^O``, a missing
    causal mask, scaling by ``sqrt(d_model)``, heads cut from the wrong axis, and heads
    merged in the wrong order. PyTorch's fused attention is switched off.
    """
    g = _gen(2)
    cases = [
        _mha_case(g, "one head, 3 positions of width 4", 1, 3, 4, 1),
        _mha_case(g, "2 heads of 4, 5 positions, a batch of 2", 2, 5, 8, 2),
        _mha_case(g, "4 heads of 16 over 33 positions", 3, 33, 64, 4),
        _mha_case(g, "8 heads of 64 over 128 positions (width 512)", 2, 128, 512, 8),
        _mha_case(g, "12 heads of 64 over 50 positions (width 768)", 1, 50, 768, 12),
    ]
    return run_cases(
        "multi_head_attention",
        fn,
        solution_multi_head_attention,
        cases,
        forbid=_FUSED_ATTENTION,
        verbose=verbose,
    )


def _block_parts(
    d: int, heads: int, seed: int
) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """Sub-layers with random weights, and two layer norms with different gains."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attn = MultiHeadAttention(d, heads)
        mlp = MLP(d, 4 * d)
        ln1, ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        with torch.no_grad():
            for ln in (ln1, ln2):
                ln.weight.normal_(1.0, 0.3)
                ln.bias.normal_(0.0, 0.3)
    for module in (attn, mlp, ln1, ln2):
        module.requires_grad_(False)
    return attn.eval(), mlp.eval(), ln1, ln2


def check_pre_ln_block(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, attn, mlp, ln1, ln2)`` against :func:`solution_pre_ln_block`.

    The sub-layers are the package's attention and feed-forward layers with random
    weights; the two layer norms have different gains and biases. Cases: width 16 with
    2 heads; width 128 over 64 positions; width 512 over 100 positions, on a residual
    stream far from unit scale. Catches post-LN, missing residuals, a normalised
    residual stream and one norm used twice.
    """
    g = _gen(3)
    cases = []
    for description, batch, seq, d, heads, scale in [
        ("width 16, 2 heads, 4 positions", 1, 4, 16, 2, 1.0),
        ("width 128, 4 heads, 64 positions, a batch of 4", 4, 64, 128, 4, 1.0),
        ("width 512, 8 heads, 100 positions, a stream of scale 20", 2, 100, 512, 8, 20),
    ]:
        x = scale * torch.randn(batch, seq, d, generator=g)
        cases.append(
            Case(
                description, (x, *_block_parts(d, heads, seed=d)), atol=1e-4, rtol=1e-4
            )
        )
    return run_cases("pre_ln_block", fn, solution_pre_ln_block, cases, verbose=verbose)


def _causal_weights(g: torch.Generator, batch: int, heads: int, seq: int) -> Tensor:
    scores = 3 * torch.randn(batch, heads, seq, seq, generator=g)
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


def check_mean_attention_distance(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(weights)`` against :func:`solution_mean_attention_distance`.

    Cases: a head that always looks one step back (distance 1) beside one that looks at
    itself (0); uniform causal weights; random causal maps of 64 windows, 8 heads, 64
    positions; bidirectional (encoder) maps, where keys after the query count too;
    float64. Catches signed distances, the arg-max instead of the weighted mean, a mean
    over keys instead of a sum, a forgotten mean over the batch, and swapped axes.
    """
    g = _gen(4)
    seq = 6
    previous = torch.zeros(1, 2, seq, seq)
    previous[0, 0, 0, 0] = 1.0
    previous[0, 0, torch.arange(1, seq), torch.arange(seq - 1)] = 1.0  # one step back
    previous[0, 1] = torch.eye(seq)  # itself
    uniform = torch.ones(seq, seq).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None]
    both_ways = torch.softmax(2 * torch.randn(3, 4, 40, 40, generator=g), dim=-1)
    cases = [
        Case("two heads: one step back, and the token itself", (previous,)),
        Case("uniform causal weights over 6 positions", (uniform,)),
        Case(
            "64 windows, 8 heads, 64 positions, causal",
            (_causal_weights(g, 64, 8, 64),),
        ),
        Case("bidirectional maps: 3 sequences, 4 heads, 40 positions", (both_ways,)),
        Case(
            "float64 causal maps, 2 windows, 12 heads, 33 positions",
            (_causal_weights(g, 2, 12, 33).double(),),
        ),
    ]
    return run_cases(
        "mean_attention_distance",
        fn,
        solution_mean_attention_distance,
        cases,
        atol=1e-4,
        rtol=1e-5,
        verbose=verbose,
    )
