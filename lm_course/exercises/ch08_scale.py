"""Chapter 8 (efficiency at scale): reference solutions and checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch08_scale as ex
    ex.check_quantize_int8(quantize_int8)

The five exercises: int8 quantisation with one scale per row; magnitude pruning to an
exact sparsity; the distillation loss; the Newton-Schulz iteration at the heart of
Muon; the memory ZeRO leaves on each device. Hidden cases reach realistic sizes (a
GPT-2 layer's matrices, a 65-character vocabulary over whole batches, 175 billion
parameters on a thousand devices). What every check also holds an answer to (types,
dtypes, inputs left alone) is in :mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .checker import Case, CheckResult, ForbiddenOperation, run_cases

__all__ = [
    "solution_quantize_int8",
    "solution_prune_by_magnitude",
    "solution_distillation_loss",
    "solution_newton_schulz",
    "solution_zero_memory",
    "check_quantize_int8",
    "check_prune_by_magnitude",
    "check_distillation_loss",
    "check_newton_schulz",
    "check_zero_memory",
]


# ------------------------------------------------------------------ reference solutions


def solution_quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 quantisation of ``w`` ``(rows, cols)``, one scale per row.

    Returns ``(values, scale)``: ``values`` int8 ``(rows, cols)`` in ``[-127, 127]``,
    ``scale`` float32 ``(rows,)`` with ``scale = max |w_row| / 127`` (1 for a row of
    zeros), so that ``w ~ values * scale[:, None]``; values are rounded to the nearest
    integer.
    """
    scale = w.abs().amax(dim=1).float() / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(w.float() / scale[:, None]).clamp(-127, 127)
    return values.to(torch.int8), scale


def solution_prune_by_magnitude(w: Tensor, sparsity: float) -> Tensor:
    """A copy of ``w`` with its ``k = round(sparsity * w.numel())`` entries of smallest
    absolute value set to zero (same shape and dtype)."""
    k = round(sparsity * w.numel())
    out = w.clone()
    if k:
        smallest = w.abs().flatten().argsort(stable=True)[:k]
        out.view(-1)[smallest] = 0
    return out


def solution_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    temperature: float,
    alpha: float,
) -> Tensor:
    """``alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * CE(student, y)``.

    Both distributions are softmaxes of the logits divided by ``T``; the KL divergence
    is summed over the vocabulary and averaged over positions; the cross-entropy is
    the usual one (``T = 1``) against ``targets``. Logits ``(..., vocab)``, targets
    ``(...)``; returns a scalar tensor.
    """
    vocab = student_logits.size(-1)
    s = student_logits.reshape(-1, vocab)
    t = teacher_logits.reshape(-1, vocab)
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()
    ce = F.cross_entropy(s, targets.reshape(-1))
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def solution_newton_schulz(g: Tensor, steps: int) -> Tensor:
    """``steps`` quintic Newton-Schulz iterations on ``g / (||g||_F + 1e-7)``.

    Each maps ``X`` to ``a X + (b A + c A A) X`` with ``A = X X^T`` and ``(a, b, c) =
    (3.4445, -4.7750, 2.0315)``. Returns a matrix of the shape and dtype of ``g``.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x


def solution_zero_memory(n_params: int, n_devices: int, stage: int) -> float:
    """Bytes per device for weights, gradients and Adam's state under ZeRO ``stage``.

    Mixed-precision Adam keeps 2 bytes of weights, 2 of gradients and 12 of optimizer
    state per parameter; stage 1 shards the optimizer state over the ``n_devices``,
    stage 2 the gradients too, stage 3 the weights too (stage 0 shards nothing).
    Returns a float.
    """
    weights, grads, optimizer = 2.0 * n_params, 2.0 * n_params, 12.0 * n_params
    if stage >= 1:
        optimizer /= n_devices
    if stage >= 2:
        grads /= n_devices
    if stage >= 3:
        weights /= n_devices
    return weights + grads + optimizer


# ------------------------------------------------------------------------- checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run_quantize(fn: Callable[[Tensor], Any], w: Tensor) -> tuple[Tensor, Tensor]:
    """Call ``fn(w)``; blank the entries whose exact value lies within 1e-3 of a half
    step, where two correct orders of arithmetic may round either way."""
    before = w.clone()
    out = fn(w)
    if not torch.equal(before, w):
        raise ForbiddenOperation(
            "your function changed `w` in place; return new tensors instead"
        )
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise ForbiddenOperation(
            f"expected a tuple (values, scale), got {type(out).__name__}"
        )
    values, scale = out
    exact = solution_quantize_int8(w)[1]
    ratio = w.double() / exact.double()[:, None]
    tie = (ratio - ratio.floor() - 0.5).abs() < 1e-3
    if isinstance(values, Tensor) and values.shape == tie.shape:
        values = values.masked_fill(tie, 0)
    return values, scale


def check_quantize_int8(
    fn: Callable[[Tensor], tuple[Tensor, Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(w) -> (values, scale)`` against :func:`solution_quantize_int8`.

    Cases: a small matrix by hand; a row whose largest weight is negative (it becomes
    -127); rows whose sizes differ by a thousand times (one scale per matrix would
    crush the small rows); a row of zeros; GPT-2's attention projection (768 x 2304);
    float64 weights (the scale is still float32).
    """
    g = _gen(8)
    spread = torch.randn(64, 48, generator=g) * torch.logspace(-3, 0, 64)[:, None]
    cases = [
        Case(
            "w = [[0.9, -0.3, 0.2], [0.1, 0.4, -0.05]]",
            (torch.tensor([[0.9, -0.3, 0.2], [0.1, 0.4, -0.05]]),),
        ),
        Case(
            "a row whose largest magnitude is negative: [[-2.0, 1.3, 0.7]]",
            (torch.tensor([[-2.0, 1.3, 0.7]]),),
        ),
        Case("64 rows whose sizes range from 0.001 to 1", (spread,)),
        Case(
            "a row of zeros between two others",
            (torch.tensor([[0.3, -0.2], [0.0, 0.0], [1.5, 0.25]]),),
        ),
        Case(
            "GPT-2's attention projection, 768 x 2304, weights of std 0.02",
            (0.02 * torch.randn(768, 2304, generator=g),),
        ),
        Case(
            "float64 weights, 10 x 30",
            (torch.randn(10, 30, generator=g, dtype=torch.float64),),
        ),
    ]
    return run_cases(
        "quantize_int8",
        fn,
        solution_quantize_int8,
        cases,
        call=_run_quantize,
        hints={"overflow": "127, not 128, is the largest int8 a symmetric scale uses."},
        verbose=verbose,
    )


def check_prune_by_magnitude(
    fn: Callable[[Tensor, float], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(w, sparsity)`` against :func:`solution_prune_by_magnitude`.

    Cases: a small matrix by hand (large negative weights must stay); sparsity 0 and 1;
    weights that are already half zeros; a 768 x 768 matrix at 90% and a 3-D tensor at
    50% (the whole tensor shares one threshold, not each row); float64.
    """
    g = _gen(9)
    half_zero = torch.randn(20, 20, generator=g)
    half_zero[:, ::2] = 0
    cases = [
        Case(
            "w = [[0.5, -3.0], [0.1, 2.0]], sparsity 0.5 (-3 is large, not small)",
            (torch.tensor([[0.5, -3.0], [0.1, 2.0]]), 0.5),
        ),
        Case("sparsity 0: nothing changes", (torch.randn(6, 5, generator=g), 0.0)),
        Case("sparsity 1: everything is zero", (torch.randn(6, 5, generator=g), 1.0)),
        Case(
            "20 x 20 weights, half of them zero already, sparsity 0.75",
            (half_zero, 0.75),
        ),
        Case(
            "rows of different sizes (one threshold for the whole matrix), 0.5",
            (torch.randn(8, 10, generator=g) * torch.arange(1.0, 9.0)[:, None], 0.5),
        ),
        Case(
            "a 768 x 768 matrix at sparsity 0.9",
            (torch.randn(768, 768, generator=g), 0.9),
        ),
        Case(
            "a (4, 8, 16) tensor at sparsity 0.5",
            (torch.randn(4, 8, 16, generator=g), 0.5),
        ),
        Case(
            "float64, 10 x 10 at sparsity 0.3",
            (torch.randn(10, 10, generator=g, dtype=torch.float64), 0.3),
        ),
    ]
    return run_cases(
        "prune_by_magnitude", fn, solution_prune_by_magnitude, cases, verbose=verbose
    )


def check_distillation_loss(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(student_logits, teacher_logits, targets, temperature, alpha)``.

    Cases: a small batch to follow by hand; ``alpha`` 0 (plain cross-entropy) and 1
    (only the teacher); temperature 1 and 4 (the ``T^2`` factor); a student equal to
    its teacher (no KL); logits in the hundreds (softmax must not overflow); a batch of
    8 windows of 64 characters over a vocabulary of 65.
    """
    g = _gen(10)

    def logits(*shape: int, scale: float = 2.0) -> Tensor:
        return scale * torch.randn(*shape, generator=g)

    def ids(*shape: int, vocab: int) -> Tensor:
        return torch.randint(0, vocab, shape, generator=g)

    same = logits(2, 3, 5)
    cases = [
        Case(
            "2 positions, vocabulary 3, T = 2, alpha = 0.5",
            (logits(1, 2, 3), logits(1, 2, 3), torch.tensor([[0, 2]]), 2.0, 0.5),
        ),
        Case(
            "alpha = 0: the plain cross-entropy",
            (logits(2, 4, 7), logits(2, 4, 7), ids(2, 4, vocab=7), 3.0, 0.0),
        ),
        Case(
            "alpha = 1: the teacher's term only, T = 1",
            (logits(2, 4, 7), logits(2, 4, 7), ids(2, 4, vocab=7), 1.0, 1.0),
        ),
        Case(
            "T = 4, alpha = 0.7",
            (logits(3, 5, 11), logits(3, 5, 11), ids(3, 5, vocab=11), 4.0, 0.7),
        ),
        Case(
            "a student equal to its teacher, T = 2, alpha = 0.9",
            (same, same.clone(), ids(2, 3, vocab=5), 2.0, 0.9),
        ),
        Case(
            "logits in the hundreds, T = 2, alpha = 0.5",
            (
                logits(2, 6, 9, scale=300.0),
                logits(2, 6, 9, scale=300.0),
                ids(2, 6, vocab=9),
                2.0,
                0.5,
            ),
            atol=1e-3,
        ),
        Case(
            "8 windows of 64 characters, vocabulary 65, T = 2, alpha = 0.5",
            (logits(8, 64, 65), logits(8, 64, 65), ids(8, 64, vocab=65), 2.0, 0.5),
        ),
    ]
    return run_cases(
        "distillation_loss",
        fn,
        solution_distillation_loss,
        cases,
        atol=1e-4,
        rtol=1e-4,
        verbose=verbose,
    )


def check_newton_schulz(
    fn: Callable[[Tensor, int], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(g, steps)`` against :func:`solution_newton_schulz`.

    Cases: one step on a 2 x 2 matrix (to follow by hand); zero steps (only the
    normalisation); a wide and a tall matrix (both orientations); a gradient whose
    singular values span four orders of magnitude; the shape of a 128-wide MLP's
    matrices; a gradient of large entries (the normalisation matters); float64.
    """
    g = _gen(11)
    u, _, vh = torch.linalg.svd(torch.randn(40, 24, generator=g), full_matrices=False)
    spread = u @ torch.diag(torch.logspace(0, -4, 24)) @ vh
    cases = [
        Case(
            "g = [[2., 1.], [0., 1.]], 1 step",
            (torch.tensor([[2.0, 1.0], [0.0, 1.0]]), 1),
        ),
        Case("0 steps: only the normalisation", (torch.randn(5, 3, generator=g), 0)),
        Case("a wide 16 x 48 matrix, 5 steps", (torch.randn(16, 48, generator=g), 5)),
        Case("a tall 48 x 16 matrix, 5 steps", (torch.randn(48, 16, generator=g), 5)),
        Case("singular values from 1 to 1e-4, 40 x 24, 5 steps", (spread, 5)),
        Case(
            "an MLP matrix, 512 x 128, 5 steps", (torch.randn(512, 128, generator=g), 5)
        ),
        Case(
            "entries around 1000, 30 x 20, 3 steps",
            (1000 * torch.randn(30, 20, generator=g), 3),
        ),
        Case(
            "float64, 12 x 8, 5 steps",
            (torch.randn(12, 8, generator=g, dtype=torch.float64), 5),
        ),
    ]
    return run_cases(
        "newton_schulz",
        fn,
        solution_newton_schulz,
        cases,
        atol=1e-4,
        rtol=1e-4,
        verbose=verbose,
    )


def check_zero_memory(
    fn: Callable[[int, int, int], float], verbose: bool = True
) -> CheckResult:
    """Check ``fn(n_params, n_devices, stage)`` against :func:`solution_zero_memory`.

    Cases: numbers to count by hand; each stage for the ZeRO paper's 7.5 billion
    parameters on 64 devices; one device (sharding changes nothing); GPT-3's 175
    billion on 1,024 devices. The answer is a float (bytes).
    """
    cases = [
        Case("1,000 parameters, 4 devices, stage 0", (1000, 4, 0)),
        Case("1,000 parameters, 4 devices, stage 1", (1000, 4, 1)),
        Case("1,000 parameters, 4 devices, stage 2", (1000, 4, 2)),
        Case("1,000 parameters, 4 devices, stage 3", (1000, 4, 3)),
        *(
            Case(
                f"7.5 billion parameters, 64 devices, stage {s}", (7_500_000_000, 64, s)
            )
            for s in range(4)
        ),
        Case("one device, stage 3 (nothing to share with)", (1_000_000, 1, 3)),
        Case(
            "GPT-3: 175 billion parameters, 1,024 devices, stage 2",
            (175 * 10**9, 1024, 2),
        ),
    ]
    return run_cases(
        "zero_memory",
        fn,
        solution_zero_memory,
        cases,
        rtol=1e-9,
        atol=0.0,
        verbose=verbose,
    )


# The teaching figure of the last exercise: bytes per parameter, unsharded.
assert math.isclose(solution_zero_memory(1, 1, 0), 16.0)
