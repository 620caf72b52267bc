"""Chapter 6 checkers (monitoring and summaries): each accepts the reference and a
differently written correct answer, says "not attempted" for a stub, and rejects wrong
answers of several kinds with a message that names the case."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    passes,
)
from rouge_score import rouge_scorer

from lm_course.applications import expected_calibration_error
from lm_course.exercises import ch06_applications as ex

ALL_CHECKS = [
    (ex.check_calibration_error, ex.solution_calibration_error),
    (ex.check_rouge1, ex.solution_rouge1),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


# ------------------------------------------------------------ calibration_error


def test_calibration_error_accepts_the_package_and_a_loop() -> None:
    assert passes(ex.check_calibration_error, expected_calibration_error)

    def with_bincount(confidence, correct, n_bins):
        index = torch.clamp((confidence * n_bins).floor().long(), 0, n_bins - 1)
        count = torch.bincount(index, minlength=n_bins).double()
        conf = torch.bincount(index, confidence.double(), minlength=n_bins)
        right = torch.bincount(index, correct.double(), minlength=n_bins)
        full = count > 0
        gap = (right[full] - conf[full]).abs()  # n_b * |acc_b - conf_b|
        return (gap.sum() / confidence.numel()).item()

    assert passes(ex.check_calibration_error, with_bincount)


def test_calibration_error_rejects_common_mistakes() -> None:
    def unweighted(confidence, correct, n_bins):  # every bin counts the same
        index = (confidence * n_bins).long().clamp(max=n_bins - 1)
        gaps = [
            abs(correct[index == b].double().mean() - confidence[index == b].mean())
            for b in range(n_bins)
            if (index == b).any()
        ]
        return float(sum(gaps) / len(gaps))

    def signed(confidence, correct, n_bins):  # gaps of both signs cancel
        index = (confidence * n_bins).long().clamp(max=n_bins - 1)
        total = 0.0
        for b in range(n_bins):
            inside = index == b
            if inside.any():
                gap = correct[inside].double().mean() - confidence[inside].mean()
                total += inside.sum().item() / len(confidence) * gap.item()
        return abs(total)

    def no_clamp(confidence, correct, n_bins):  # 1.0 falls into bin n_bins
        index = (confidence * n_bins).long()
        total = 0.0
        for b in range(n_bins):
            inside = index == b
            if inside.any():
                gap = correct[inside].double().mean() - confidence[inside].mean()
                total += inside.sum().item() / len(confidence) * abs(gap.item())
        return total

    def overall(confidence, correct, n_bins):  # no bins at all
        return abs(correct.double().mean() - confidence.double().mean()).item()

    def as_tensor(confidence, correct, n_bins):
        return torch.tensor(ex.solution_calibration_error(confidence, correct, n_bins))

    result = ex.check_calibration_error(unweighted, verbose=False)
    assert failed(result, "6 predictions")
    assert failed(ex.check_calibration_error(signed, verbose=False), "expected")
    assert failed(ex.check_calibration_error(no_clamp, verbose=False), "exactly 1.0")
    assert failed(ex.check_calibration_error(overall, verbose=False), "expected")
    assert failed(ex.check_calibration_error(as_tensor, verbose=False), "Python float")


# -------------------------------------------------------------------- rouge1


def test_rouge1_matches_the_rouge_score_package() -> None:
    class Words:
        def tokenize(self, text):
            return text.split()

    scorer = rouge_scorer.RougeScorer(["rouge1"], tokenizer=Words())
    for prediction, reference in [
        ("we propose a new loss function", "a new loss for training"),
        ("the the the", "the cat"),
        ("a b", "c d e"),
    ]:
        want = scorer.score(reference, prediction)["rouge1"].fmeasure
        got = ex.solution_rouge1(prediction.split(), reference.split())
        assert got == pytest.approx(want)


def test_rouge1_accepts_a_loop_over_words() -> None:
    def loop(prediction, reference):
        left = list(reference)
        shared = 0
        for word in prediction:
            if word in left:
                left.remove(word)
                shared += 1
        if not shared:
            return 0.0
        p, r = shared / len(prediction), shared / len(reference)
        return 2 * p * r / (p + r)

    assert passes(ex.check_rouge1, loop)


def test_rouge1_rejects_common_mistakes() -> None:
    def unclipped(prediction, reference):  # "the the the" shares three "the"
        ref = set(reference)
        shared = sum(word in ref for word in prediction)
        if not shared:
            return 0.0
        p, r = shared / len(prediction), min(1.0, shared / len(reference))
        return 2 * p * r / (p + r)

    def precision_only(prediction, reference):
        shared = sum((Counter(prediction) & Counter(reference)).values())
        return shared / len(prediction) if prediction else 0.0

    def unique_words(prediction, reference):  # sets lose repeated words
        shared = len(set(prediction) & set(reference))
        if not shared:
            return 0.0
        p, r = shared / len(set(prediction)), shared / len(set(reference))
        return 2 * p * r / (p + r)

    def nan_for_nothing(prediction, reference):
        shared = sum((Counter(prediction) & Counter(reference)).values())
        p = shared / max(len(prediction), 1)
        r = shared / len(reference)
        return 2 * p * r / (p + r) if p + r else float("nan")

    assert failed(ex.check_rouge1(unclipped, verbose=False), "repeated word")
    assert failed(ex.check_rouge1(precision_only, verbose=False), "6-word")
    assert failed(ex.check_rouge1(unique_words, verbose=False), "expected")
    assert failed(ex.check_rouge1(nan_for_nothing, verbose=False), "no shared word")
