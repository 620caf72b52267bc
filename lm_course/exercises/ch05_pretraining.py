"""Chapter 5 (pretraining and fine-tuning): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch05_pretraining as ex
    ex.check_bits_per_character(my_bits_per_character)

The exercises are the chapter's pieces written by hand: bits per character from token
losses (section 3), BERT's 80/10/10 masking with its random draws given (section 2),
mean pooling over real tokens (section 4), and the two parameter-efficient layers of
section 5, LoRA and the Houlsby adapter. Each ``check_*`` runs seeded hidden cases
against the ``solution_*`` of the same name, from ones a reader can follow by hand to
realistic sizes (100,000 token losses, widths of 768, a vocabulary of 30,000), with the
inputs that tell a right answer from a nearly right one: NaN in padding vectors, rows
of one token, draws exactly on the 0.8 and 0.9 borders. What every check also holds an
answer to (type and dtype, inputs left alone, a clear report) is in
:mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .checker import Case, CheckResult, Forbid, run_cases

__all__ = [
    "solution_bits_per_character",
    "solution_bert_mask",
    "solution_masked_mean_pool",
    "solution_lora_linear",
    "solution_adapter",
    "check_bits_per_character",
    "check_bert_mask",
    "check_masked_mean_pool",
    "check_lora_linear",
    "check_adapter",
]

IGNORE_INDEX = -100


# ------------------------------------------------------------------ reference solutions


def solution_bits_per_character(token_losses: Tensor, n_chars: int) -> float:
    """Bits per character of a text from its per-token losses.

    Args:
        token_losses: ``(n_tokens,)`` float, ``-ln P(token | context)`` in nats, one per
            token of the text (whatever the tokenizer: characters or pieces).
        n_chars: the number of characters of the same text.

    Returns:
        A Python float: the total loss in bits (``sum / ln 2``) divided by ``n_chars``.
        Dividing by the number of *tokens* instead gives bits per token, which
        differs between tokenizers.
    """
    return token_losses.double().sum().item() / math.log(2) / n_chars


def solution_bert_mask(
    ids: Tensor,
    choose: Tensor,
    split: Tensor,
    random_ids: Tensor,
    mask_id: int,
    special_ids: Tensor,
    prob: float = 0.15,
) -> tuple[Tensor, Tensor]:
    """BERT's masking rule with its random numbers given.

    Args:
        ids: ``(batch, seq)`` long token ids.
        choose: ``(batch, seq)`` uniform numbers in ``[0, 1)``: a token is chosen when
            its number is below ``prob`` and it is not special.
        split: ``(batch, seq)`` uniform numbers: a chosen token becomes ``mask_id`` when
            below 0.8, ``random_ids`` at that position when in ``[0.8, 0.9)``, and
            stays itself from 0.9 on.
        random_ids: ``(batch, seq)`` long, the replacement drawn for each position.
        mask_id: the ``[MASK]`` id.
        special_ids: ``(n,)`` long ids that are never chosen (padding, ``[CLS]``, ...).
        prob: the share of tokens to choose.

    Returns:
        ``(inputs, targets)``, new ``(batch, seq)`` long tensors: ``targets`` holds the
        *original* id at chosen positions and ``-100`` everywhere else.
    """
    chosen = (choose < prob) & ~torch.isin(ids, special_ids)
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    inputs = torch.where(chosen & (split < 0.8), torch.full_like(ids, mask_id), ids)
    swap = chosen & (split >= 0.8) & (split < 0.9)
    inputs = torch.where(swap, random_ids, inputs)
    return inputs, targets


def solution_masked_mean_pool(hidden: Tensor, keep: Tensor) -> Tensor:
    """The mean of each row's vectors over its real tokens only.

    Args:
        hidden: ``(batch, seq, d)`` float; vectors at padding may hold anything, even
            NaN.
        keep: ``(batch, seq)`` bool, True at real tokens (at least one per row; the
            padding may be on either side).

    Returns:
        ``(batch, d)`` in the dtype of ``hidden``.
    """
    kept = torch.where(keep.unsqueeze(-1), hidden, torch.zeros_like(hidden))
    counts = keep.sum(dim=1, keepdim=True).to(hidden.dtype)  # (batch, 1)
    return kept.sum(dim=1) / counts


def solution_lora_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    lora_a: Tensor,
    lora_b: Tensor,
    alpha: float,
) -> Tensor:
    """A frozen linear layer plus LoRA's scaled low-rank update.

    Args:
        x: ``(..., d_in)``.
        weight: ``(d_out, d_in)`` and ``bias`` ``(d_out,)``: the frozen layer.
        lora_a: ``(r, d_in)`` and ``lora_b``: ``(d_out, r)``: the update's factors.
        alpha: the scale's numerator; the update is multiplied by ``alpha / r``.

    Returns:
        ``x W^T + b + (alpha / r) x A^T B^T``, ``(..., d_out)``. Going through the rank
        ``r`` first never forms the ``d_out x d_in`` product ``B A``.
    """
    rank = lora_a.shape[0]
    update = (x @ lora_a.T) @ lora_b.T  # (..., d_out) through (..., r)
    return x @ weight.T + bias + (alpha / rank) * update


def solution_adapter(
    h: Tensor, w_down: Tensor, b_down: Tensor, w_up: Tensor, b_up: Tensor
) -> Tensor:
    """Houlsby's adapter: ``h + W_up GELU(W_down h + b_down) + b_up``.

    Args:
        h: ``(..., d)`` the sub-layer's output.
        w_down: ``(r, d)``, ``b_down`` ``(r,)``; ``w_up``: ``(d, r)``, ``b_up``
            ``(d,)``.

    Returns:
        ``(..., d)``. The exact (erf) GELU, as ``torch.nn.functional.gelu`` computes by
        default; the skip connection makes an adapter whose ``w_up`` and ``b_up`` are
        zero the identity.
    """
    return h + F.gelu(h @ w_down.T + b_down) @ w_up.T + b_up


# ------------------------------------------------------------------ checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def check_bits_per_character(
    fn: Callable[..., float], verbose: bool = True
) -> CheckResult:
    """Check ``fn(token_losses, n_chars)`` against :func:`solution_bits_per_character`.

    Cases: 3 losses of ln 2 over 3 characters (1 bit each) and over 6; a uniform guess
    over 65 characters; 100,000 losses of SentencePiece tokens (3.5 characters each);
    zero loss. Catches
    dividing by tokens instead of characters, the mean instead of the sum, nats left
    as nats, and ``log2`` of the losses.
    """
    g = _gen(0)
    many = 4.0 + torch.rand(100_000, generator=g) * 2
    cases = [
        Case("3 tokens of ln 2 nats, 3 characters", (torch.full((3,), math.log(2)), 3)),
        Case("3 tokens of ln 2 nats, 6 characters", (torch.full((3,), math.log(2)), 6)),
        Case(
            "a uniform guess over 65 characters (1,000 tokens of ln 65)",
            (torch.full((1000,), math.log(65)), 1000),
        ),
        Case("100,000 piece losses, 350,000 characters", (many, 350_000)),
        Case("a text the model predicts perfectly", (torch.zeros(50), 120)),
    ]
    return run_cases(
        "bits_per_character",
        fn,
        solution_bits_per_character,
        cases,
        atol=1e-6,
        rtol=1e-6,
        verbose=verbose,
    )


def _mask_case(
    g: torch.Generator, description: str, batch: int, seq: int, vocab: int, **kw: float
) -> Case:
    ids = torch.randint(4, vocab, (batch, seq), generator=g)
    ids[:, 0] = 1  # [CLS]
    ids[:, -2:] = 0  # padding
    choose = torch.rand(batch, seq, generator=g)
    split = torch.rand(batch, seq, generator=g)
    if kw.get("borders"):  # draws exactly on the borders of the 80/10/10 split
        split.view(-1)[0::3] = 0.8
        split.view(-1)[1::3] = 0.9
        choose.view(-1)[0::5] = 0.15
    random_ids = torch.randint(4, vocab, (batch, seq), generator=g)
    prob = kw.get("prob", 0.15)
    return Case(
        description, (ids, choose, split, random_ids, 3, torch.tensor([0, 1, 2]), prob)
    )


def check_bert_mask(
    fn: Callable[..., tuple[Tensor, Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(ids, choose, split, random_ids, mask_id, special_ids, prob)``.

    Cases: 2 rows of 8; a batch of 32 x 128 over a vocabulary of 30,000; draws exactly
    on 0.8, 0.9 and ``prob``; ``prob=0.4``; ``prob=1.0`` (every non-special token).
    Catches choosing special tokens, the split in the wrong order (10/10/80), ``<=`` at
    the borders, ``mask_id`` (or the replacement) as the target, targets of 0 instead
    of -100 and changing ``ids`` in place.
    """
    g = _gen(1)
    cases = [
        _mask_case(g, "2 rows of 8 tokens", 2, 8, 20),
        _mask_case(g, "32 rows of 128 over a vocabulary of 30,000", 32, 128, 30_000),
        _mask_case(g, "draws exactly on 0.8, 0.9 and prob", 8, 64, 1000, borders=1.0),
        _mask_case(
            g, "prob=0.4 (RoBERTa-era studies mask more)", 8, 64, 1000, prob=0.4
        ),
        _mask_case(
            g, "prob=1.0: every token but the special ones", 4, 16, 50, prob=1.0
        ),
    ]
    return run_cases("bert_mask", fn, solution_bert_mask, cases, verbose=verbose)


def _pool_case(
    g: torch.Generator,
    description: str,
    lengths: list[int],
    seq: int,
    d: int,
    *,
    left: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Case:
    hidden = torch.randn(len(lengths), seq, d, generator=g).to(dtype)
    keep = torch.zeros(len(lengths), seq, dtype=torch.bool)
    for row, n in enumerate(lengths):
        if left:
            keep[row, seq - n :] = True
        else:
            keep[row, :n] = True
    hidden[~keep] = float("nan")  # padding vectors may hold anything
    return Case(
        description, (hidden, keep), atol=1e-3 if dtype == torch.float16 else None
    )


def check_masked_mean_pool(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(hidden, keep)`` against :func:`solution_masked_mean_pool`.

    Cases: 2 rows by hand; rows of one token; padding on the left; 64 sentences of 1 to
    128 tokens at width 768; float64 and float16. Padding vectors are NaN. Catches the
    plain mean, multiplying by the mask (0 x NaN is NaN), dividing by the padded length,
    and a float32 result for float16 or float64 input.
    """
    g = _gen(2)
    lengths = torch.randint(1, 129, (64,), generator=g).tolist()
    cases = [
        _pool_case(g, "2 rows of 3 and 1 real tokens", [3, 1], 4, 2),
        _pool_case(g, "rows of a single token", [1, 1, 1], 6, 8),
        _pool_case(g, "padding on the left", [2, 5], 5, 4, left=True),
        _pool_case(g, "64 sentences of 1-128 tokens, width 768", lengths, 128, 768),
        _pool_case(g, "float64 vectors", [4, 2], 4, 16, dtype=torch.float64),
        _pool_case(g, "float16 vectors", [4, 7], 8, 16, dtype=torch.float16),
    ]
    return run_cases(
        "masked_mean_pool", fn, solution_masked_mean_pool, cases, verbose=verbose
    )


def _lora_case(
    g: torch.Generator,
    description: str,
    shape: tuple[int, ...],
    d_out: int,
    r: int,
    alpha: float,
) -> Case:
    d_in = shape[-1]
    x = torch.randn(*shape, generator=g)
    weight = torch.randn(d_out, d_in, generator=g) / math.sqrt(d_in)
    bias = torch.randn(d_out, generator=g)
    lora_a = torch.randn(r, d_in, generator=g) / math.sqrt(d_in)
    lora_b = torch.randn(d_out, r, generator=g)
    return Case(
        description, (x, weight, bias, lora_a, lora_b, alpha), atol=1e-4, rtol=1e-4
    )


_NO_LINEAR = Forbid("linear", why="write the matrix products yourself")


def check_lora_linear(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, weight, bias, lora_a, lora_b, alpha)``.

    Cases: width 4 to 3 with rank 1; rank 8 of a 128 -> 384 query-key-value layer over
    a batch of sentences; rank 16 at width 768; ``alpha`` equal to and different from
    the rank. Catches a missing ``alpha / r`` (or ``alpha`` alone, or ``r / alpha``),
    the factors in the wrong order, a missing bias, and the update without ``x``.
    ``F.linear`` is switched off.
    """
    g = _gen(3)
    cases = [
        _lora_case(g, "width 4 -> 3, rank 1, alpha 2", (2, 4), 3, 1, 2.0),
        _lora_case(
            g, "rank 4 with alpha 4 (scale 1), 3 x 5 positions", (3, 5, 16), 16, 4, 4.0
        ),
        _lora_case(
            g,
            "rank 8 of a 128 -> 384 qkv layer, 4 x 32 positions",
            (4, 32, 128),
            384,
            8,
            16.0,
        ),
        _lora_case(g, "rank 16 at width 768, alpha 32", (2, 20, 768), 768, 16, 32.0),
    ]
    return run_cases(
        "lora_linear",
        fn,
        solution_lora_linear,
        cases,
        forbid=_NO_LINEAR,
        verbose=verbose,
    )


def _adapter_case(
    g: torch.Generator,
    description: str,
    shape: tuple[int, ...],
    r: int,
    zero_up: bool = False,
) -> Case:
    d = shape[-1]
    h = 3 * torch.randn(*shape, generator=g)  # GELU's curved part and both tails
    w_down = torch.randn(r, d, generator=g) / math.sqrt(d)
    b_down = torch.randn(r, generator=g)
    w_up = torch.zeros(d, r) if zero_up else torch.randn(d, r, generator=g)
    b_up = torch.zeros(d) if zero_up else torch.randn(d, generator=g)
    return Case(description, (h, w_down, b_down, w_up, b_up), atol=1e-4, rtol=1e-4)


def check_adapter(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(h, w_down, b_down, w_up, b_up)`` against :func:`solution_adapter`.

    Cases: width 4 with a bottleneck of 2; a freshly initialised adapter (``w_up`` and
    ``b_up`` zero: the identity); bottleneck 16 at width 128 over a batch; bottleneck 64
    at width 768. Catches a missing skip connection, ReLU or the tanh approximation of
    GELU instead of the exact one, and a forgotten bias.
    """
    g = _gen(4)
    cases = [
        _adapter_case(g, "width 4, bottleneck 2", (3, 4), 2),
        _adapter_case(
            g, "a fresh adapter (w_up = 0, b_up = 0)", (2, 5, 8), 2, zero_up=True
        ),
        _adapter_case(
            g, "bottleneck 16 at width 128, 4 x 30 positions", (4, 30, 128), 16
        ),
        _adapter_case(g, "bottleneck 64 at width 768", (2, 16, 768), 64),
    ]
    return run_cases("adapter", fn, solution_adapter, cases, verbose=verbose)
