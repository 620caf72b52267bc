"""Chapter 6 (applications), monitoring and summaries: solutions and checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch06_applications as ex
    ex.check_calibration_error(calibration_error)

Two measurements the chapter relies on: the expected calibration error of a
classifier's confidences, and ROUGE-1, the word-overlap F-score summaries are scored
with. Hidden cases go from a few items a reader can follow by hand to realistic sizes
(200,000 predictions, documents of 2,000 words). What every check also holds an answer
to (type, inputs left alone) is in :mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .checker import Case, CheckResult, run_cases

__all__ = [
    "check_calibration_error",
    "check_rouge1",
    "solution_calibration_error",
    "solution_rouge1",
]


# ------------------------------------------------------------------ reference solutions


def solution_calibration_error(
    confidence: Tensor, correct: Tensor, n_bins: int
) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins of ``[0, 1]``.

    Args:
        confidence: ``(n,)`` float, the probability of each predicted class.
        correct: ``(n,)`` bool, whether each prediction was right.
        n_bins: number of bins; a confidence of exactly 1.0 is in the last one.

    Returns:
        ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|`` over the non-empty
        bins, a Python float.
    """
    index = (confidence * n_bins).long().clamp(max=n_bins - 1)  # 1.0 -> last bin
    total = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            gap = correct[inside].double().mean() - confidence[inside].double().mean()
            total += inside.sum().item() / confidence.numel() * abs(gap.item())
    return total


def solution_rouge1(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-1 F-score of two token lists, in ``[0, 1]``.

    A word counts as shared at most as often as it occurs in either list (the overlap
    of the two word counts); precision divides the shared count by the prediction's
    length, recall by the reference's, and F is their harmonic mean. No shared word
    (or an empty list) gives 0.0.
    """
    shared = sum((Counter(prediction) & Counter(reference)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(prediction), shared / len(reference)
    return 2 * precision * recall / (precision + recall)


# ------------------------------------------------------------------ checkers


def _away_from_edges(confidence: Tensor, n_bins: int) -> Tensor:
    """Move values within 1e-4 of an inner bin edge off it: on an edge, two correct
    conventions ((a, b] or [a, b)) put a value in different bins."""
    scaled = confidence.double() * n_bins
    near = (scaled - scaled.round()).abs() < 1e-4 * n_bins
    inner = (scaled.round() > 0) & (scaled.round() < n_bins)
    return torch.where(near & inner, confidence + 3e-4, confidence)


def _predictions(n: int, seed: int, sharp: float) -> tuple[Tensor, Tensor]:
    """``n`` binary-classifier confidences in [0.5, 1] and whether each was right."""
    g = torch.Generator().manual_seed(seed)
    confidence = 0.5 + 0.5 * torch.rand(n, generator=g) ** sharp
    correct = torch.rand(n, generator=g) < confidence**2  # over-confident
    return confidence, correct


def check_calibration_error(
    fn: Callable[[Tensor, Tensor, int], float], verbose: bool = True
) -> CheckResult:
    """Check ``fn(confidence, correct, n_bins)`` against
    :func:`solution_calibration_error`.

    Cases: six predictions by hand; a perfectly confident, always right model (0.0);
    confidences of exactly 1.0 (the last bin); one bin (the overall gap); 200,000
    predictions in 10 and 15 bins, with empty bins below 0.5; a three-class model's
    confidences from 1/3 up, under-confident.
    """
    by_hand = torch.tensor([0.95, 0.95, 0.85, 0.85, 0.65, 0.55])
    many = {n_bins: _predictions(200_000, 1, 0.5) for n_bins in (10, 15)}
    g = torch.Generator().manual_seed(3)
    three = 1 / 3 + (2 / 3) * torch.rand(50_000, generator=g)
    under = torch.rand(50_000, generator=g) < three.sqrt()
    ones, right = _predictions(5000, 2, 0.2)
    ones[::3] = 1.0
    cases = [
        Case(
            "6 predictions, 10 bins",
            (by_hand, torch.tensor([True, True, True, False, False, True]), 10),
        ),
        Case(
            "100 predictions at 0.999, all right, 10 bins",
            (torch.full((100,), 0.999), torch.ones(100, dtype=torch.bool), 10),
        ),
        Case(
            "5,000 predictions, a third of them at exactly 1.0, 10 bins",
            (_away_from_edges(ones, 10), right, 10),
        ),
        Case("5,000 predictions, 1 bin", (*_predictions(5000, 4, 1.0), 1)),
    ]
    for n_bins, (confidence, correct) in many.items():
        cases.append(
            Case(
                f"200,000 predictions, {n_bins} bins",
                (_away_from_edges(confidence, n_bins), correct, n_bins),
            )
        )
    cases.append(
        Case(
            "50,000 three-class predictions (confidence from 1/3), 10 bins",
            (_away_from_edges(three, 10), under, 10),
        )
    )
    return run_cases(
        "calibration_error", fn, solution_calibration_error, cases, verbose=verbose
    )


def _document(n: int, seed: int, words: int) -> list[str]:
    rng = random.Random(seed)
    pool = [f"w{i}" for i in range(words)]
    # Zipf-like: a few words very often, as in text, so that clipping matters.
    weights = [1 / (i + 1) for i in range(words)]
    return rng.choices(pool, weights=weights, k=n)


def check_rouge1(
    fn: Callable[[Sequence[str], Sequence[str]], float], verbose: bool = True
) -> CheckResult:
    """Check ``fn(prediction, reference)`` against :func:`solution_rouge1`.

    Cases: a summary by hand; a repeated word (clipping: "the the the" shares one
    "the" with "the cat"); no shared word (0.0, not NaN); an empty prediction;
    identical lists (1.0); a 2,000-word document against a 20-word summary, with
    words drawn as often as in text.
    """
    cases = [
        Case(
            "a 6-word prediction and a 5-word reference",
            (
                ["we", "propose", "a", "new", "loss", "function"],
                ["a", "new", "loss", "for", "training"],
            ),
        ),
        Case("a repeated word", (["the", "the", "the"], ["the", "cat"])),
        Case("no shared word", (["a", "b"], ["c", "d", "e"])),
        Case("an empty prediction", ([], ["a", "b"])),
        Case("identical lists", (["x", "y", "x"], ["x", "y", "x"])),
        Case(
            "a 2,000-word document against a 20-word summary",
            (_document(2000, 1, 300), _document(20, 2, 300)),
        ),
        Case(
            "a 40-word prediction against a 25-word reference",
            (_document(40, 3, 50), _document(25, 4, 50)),
        ),
    ]
    return run_cases("rouge1", fn, solution_rouge1, cases, verbose=verbose)
