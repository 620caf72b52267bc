"""The shared checker machinery: pass, fail with a clear message, not attempted."""

from __future__ import annotations

import torch

from lm_course.exercises import Case, run_cases


def reference(x: torch.Tensor) -> torch.Tensor:
    return x * 2


CASES = [
    Case("a vector of ones", (torch.ones(3),)),
    Case("a 2x2 matrix", (torch.arange(4.0).view(2, 2),)),
]


def test_pass() -> None:
    assert run_cases("double", lambda x: x + x, reference, CASES, verbose=False).passed


def test_not_attempted_does_not_raise(capsys) -> None:
    def stub(x):
        raise NotImplementedError

    result = run_cases("double", stub, reference, CASES)
    assert result.status == "not attempted"
    assert "NOT ATTEMPTED YET" in capsys.readouterr().out


def test_wrong_values_name_the_case() -> None:
    result = run_cases("double", lambda x: x * 3, reference, CASES, verbose=False)
    assert result.status == "failed"
    assert (
        "on a vector of ones" in result.message and "expected tensor" in result.message
    )


def test_wrong_shape_and_exceptions_are_reported() -> None:
    shape = run_cases(
        "double", lambda x: x.flatten() * 2, reference, CASES, verbose=False
    )
    assert "expected shape (2, 2), got shape (4,)" in shape.message
    boom = run_cases(
        "double", lambda x: x @ torch.ones(7), reference, CASES, verbose=False
    )
    assert boom.status == "failed" and "raised RuntimeError" in boom.message
    not_fn = run_cases("double", 3, reference, CASES, verbose=False)
    assert "pass your function itself" in not_fn.message


def test_in_place_candidates_cannot_corrupt_cases() -> None:
    def in_place(x):
        return x.mul_(2)

    assert run_cases("double", in_place, reference, CASES, verbose=False).passed
    assert torch.equal(CASES[0].args[0], torch.ones(3))
