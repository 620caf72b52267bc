"""Sentiment monitoring (舆情监测): a classifier's scores over a stream, and whether its
confidence can be trusted.

A monitor does not care about one review; it watches the *share* of positive ones move
over time, and it acts on the classifier's confidence. The tools:

* :func:`drifting_stream` -- labelled items reordered into a stream whose true share
  of positives moves, so that a monitor can be scored against the truth;
* :func:`rolling_share` -- the share of ones in a sliding window over a stream;
* :func:`adjusted_share` -- the share a classifier counts, corrected for its known
  error rates (adjusted classify-and-count, Forman 2008): a classifier that misses
  some positives and flags some negatives pulls every share towards the middle;
* :func:`reliability` and :func:`expected_calibration_error` -- does 90 % confidence
  mean 90 % right? Predictions are grouped into equal-width confidence bins; in each,
  the accuracy is compared with the mean confidence (Guo et al., 2017);
* :func:`fit_temperature` -- temperature scaling, the one-number fix: divide the
  logits by a ``T`` fitted on held-out data.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_int, check_number, describe

__all__ = [
    "Reliability",
    "adjusted_share",
    "drifting_stream",
    "expected_calibration_error",
    "fit_temperature",
    "reliability",
    "rolling_share",
]


def _vector(name: str, value: object) -> Tensor:
    """A non-empty 1-D tensor of floats (bools and ints become 0.0 / 1.0)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a 1-D tensor, got {describe(value)}")
    if value.dim() != 1 or value.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}"
        )
    return value.double()


def rolling_share(values: Tensor, window: int) -> Tensor:
    """Mean of ``values`` ``(n,)`` over the last ``window`` items, at each position.

    Returns ``(n - window + 1,)`` float64: entry ``i`` averages ``values[i : i +
    window]`` (a full window only, so the first points are not noisier than the rest).
    """
    x = _vector("values", values)
    check_int("window", window, minimum=1, maximum=x.numel())
    sums = torch.cat([x.new_zeros(1), x.cumsum(0)])
    return (sums[window:] - sums[:-window]) / window


def adjusted_share(observed: Tensor | float, tpr: float, fpr: float) -> Tensor:
    """The true share of positives behind an ``observed`` share of positive predictions.

    With recall ``tpr`` (share of positives predicted positive) and ``fpr`` (share of
    negatives predicted positive), the expected observed share is
    ``q = tpr * p + fpr * (1 - p)``; solving for ``p`` gives ``(q - fpr) / (tpr -
    fpr)``, clipped to ``[0, 1]``. ``tpr`` and ``fpr`` must be measured on labelled
    held-out data, and must differ (a classifier no better than chance tells nothing).
    """
    tpr = check_number("tpr", tpr, minimum=0, maximum=1)
    fpr = check_number("fpr", fpr, minimum=0, maximum=1)
    if tpr - fpr < 1e-6:
        raise ValueError(
            f"tpr must be above fpr (a classifier better than chance), got tpr={tpr}, "
            f"fpr={fpr}"
        )
    q = torch.as_tensor(observed, dtype=torch.float64)
    return ((q - fpr) / (tpr - fpr)).clamp(0.0, 1.0)


class Reliability(NamedTuple):
    """Per confidence bin: ``edges`` ``(n_bins + 1,)``, then ``(n_bins,)`` each of
    ``count`` (predictions in the bin), ``confidence`` (their mean confidence) and
    ``accuracy`` (their share correct); empty bins hold NaN."""

    edges: Tensor
    count: Tensor
    confidence: Tensor
    accuracy: Tensor


def reliability(confidence: Tensor, correct: Tensor, n_bins: int = 10) -> Reliability:
    """Group predictions into ``n_bins`` equal-width confidence bins.

    Args:
        confidence: ``(n,)`` the probability the model gave its predicted class, in
            ``[0, 1]``.
        correct: ``(n,)`` bool or 0/1, whether that prediction was right.
        n_bins: bins of width ``1 / n_bins`` over ``[0, 1]``; bin ``b`` holds
            ``(b / n_bins, (b + 1) / n_bins]`` (the first also holds 0).
    """
    conf = _vector("confidence", confidence)
    right = _vector("correct", correct)
    if conf.shape != right.shape:
        raise ValueError(
            f"confidence and correct must have the same shape, got "
            f"{tuple(conf.shape)} and {tuple(right.shape)}"
        )
    if bool(((conf < 0) | (conf > 1) | conf.isnan()).any()):
        raise ValueError("confidence must hold probabilities in [0, 1]")
    n_bins = check_int("n_bins", n_bins, minimum=1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # ceil(c * n) - 1 puts c in (b/n, (b+1)/n]; 0 goes to the first bin. Computed in
    # the caller's dtype: float32 0.1 is 0.10000000149 in float64, past the edge.
    raw = confidence if confidence.is_floating_point() else conf
    index = (torch.ceil(raw * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    conf_sum = torch.bincount(index, weights=conf, minlength=n_bins)
    right_sum = torch.bincount(index, weights=right, minlength=n_bins)
    empty = count == 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    mean_conf = torch.where(empty, nan, conf_sum / count.clamp(min=1))
    accuracy = torch.where(empty, nan, right_sum / count.clamp(min=1))
    return Reliability(edges, count.long(), mean_conf, accuracy)


def expected_calibration_error(
    confidence: Tensor, correct: Tensor, n_bins: int = 10
) -> float:
    """ECE: the gap between accuracy and confidence, averaged over bins by their size.

    ``sum_b (n_b / n) * |accuracy_b - confidence_b|`` over the non-empty bins of
    :func:`reliability` (Naeini et al., 2015; Guo et al., 2017). 0 for a perfectly
    calibrated model; its value depends on ``n_bins``. Returns a Python float.
    """
    table = reliability(confidence, correct, n_bins)
    full = table.count > 0
    weights = table.count[full].double() / table.count.sum()
    gaps = (table.accuracy[full] - table.confidence[full]).abs()
    return float((weights * gaps).sum())


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The temperature ``T`` that minimises the cross-entropy of ``logits / T``.

    Args:
        logits: ``(n, n_classes)`` held-out logits (not the test set's).
        labels: ``(n,)`` their true classes.

    ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident
    one; the predicted class never changes, so accuracy stays the same. The loss is
    convex in ``1 / T``, so a golden-section search over ``log T`` in ``[-4, 4]``
    finds the minimum (to about 1e-9).
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.size(1) < 2:
        raise ValueError(
            f"logits must be a (n, n_classes) tensor with n_classes >= 2, got "
            f"{describe(logits)}"
        )
    if not isinstance(labels, Tensor) or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must be a tensor of shape ({logits.size(0)},), got "
            f"{describe(labels)}"
        )
    x = logits.detach().double()
    y = labels.long()

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(x / math.exp(log_t), y))

    low, high = -4.0, 4.0
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    while high - low > 1e-9:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return math.exp((low + high) / 2)


def drifting_stream(
    labels: Tensor, shares: list[float], segment: int, seed: int = 0
) -> Tensor:
    """An order of the items of ``labels`` ``(n,)`` (0/1) whose positive share drifts.

    The stream is ``len(shares)`` segments of ``segment`` items; segment ``s`` holds
    ``round(shares[s] * segment)`` positives, drawn without replacement, and the rest
    negatives, shuffled within the segment. Returns ``(len(shares) * segment,)`` long
    indices into ``labels``: a simulated stream in which the true share is known.
    """
    y = _vector("labels", labels)
    check_int("segment", segment, minimum=1)
    check_int("seed", seed, minimum=0)
    if not shares:
        raise ValueError("shares must hold at least one share")
    for share in shares:
        check_number("shares[...]", share, minimum=0, maximum=1)
    g = torch.Generator().manual_seed(seed)
    pools = [
        (y == value)
        .nonzero()
        .squeeze(1)[torch.randperm(int((y == value).sum()), generator=g)]
        for value in (0, 1)
    ]
    wanted = [round(s * segment) for s in shares]
    need = (sum(segment - w for w in wanted), sum(wanted))
    if need[0] > pools[0].numel() or need[1] > pools[1].numel():
        raise ValueError(
            f"the stream needs {need[1]} positives and {need[0]} negatives; labels "
            f"has {pools[1].numel()} and {pools[0].numel()}"
        )
    taken = [0, 0]
    order = []
    for positives in wanted:
        part = torch.cat(
            [
                pools[0][taken[0] : taken[0] + segment - positives],
                pools[1][taken[1] : taken[1] + positives],
            ]
        )
        taken = [taken[0] + segment - positives, taken[1] + positives]
        order.append(part[torch.randperm(segment, generator=g)])
    return torch.cat(order)
