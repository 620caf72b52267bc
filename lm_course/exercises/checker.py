"""The machinery behind every exercise checker.

A reader writes a function in a notebook and passes it to a chapter's ``check_...``
function. The checker runs hidden cases against the reference solution and answers with a
:class:`CheckResult`: a pass, a clear description of the first case that failed (which
input, what was expected, what came back), or "not attempted yet" when the stub still
raises ``NotImplementedError``. A checker never raises, so a notebook with untouched stubs
still runs top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Case:
    """One hidden test case: a description a reader understands, and the call to make."""

    description: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check. ``status`` is ``"passed"``, ``"failed"`` or ``"not attempted"``."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        mark = {
            "passed": "PASSED",
            "failed": "FAILED",
            "not attempted": "NOT ATTEMPTED YET",
        }
        return f"[{mark[self.status]}] {self.exercise}: {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def describe(value: Any, max_items: int = 8) -> str:
    """A short, readable rendering of a value for failure messages."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        items = ", ".join(
            f"{x:.4g}" if value.is_floating_point() else str(int(x))
            for x in flat[:max_items].tolist()
        )
        more = ", ..." if flat.numel() > max_items else ""
        return f"tensor of shape {tuple(value.shape)} [{items}{more}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def compare(
    expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4
) -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else a sentence saying how it differs."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return (
                f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
            )
        if expected.dtype == torch.bool or not expected.is_floating_point():
            if not torch.equal(got.to(expected.dtype), expected):
                return f"expected {describe(expected)}, got {describe(got)}"
            return None
        if not torch.isfinite(got).all() and torch.isfinite(expected).all():
            return f"got non-finite values (nan or inf): {describe(got)}"
        if not torch.allclose(got.double(), expected.double(), atol=atol, rtol=rtol):
            worst = (got.double() - expected.double()).abs().max().item()
            return (
                f"values differ by up to {worst:.3g}: expected {describe(expected)}, "
                f"got {describe(got)}"
            )
        return None
    if isinstance(expected, float):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {describe(got)}"
        if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
            return f"expected {expected:.6g}, got {value:.6g}"
        return None
    if isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)):
        if len(expected) != len(got):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = compare(e, g, atol, rtol)
            if problem:
                return f"item {i}: {problem}"
        return None
    return (
        None
        if expected == got
        else f"expected {describe(expected)}, got {describe(got)}"
    )


def run_cases(
    exercise: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Case],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    verbose: bool = True,
) -> CheckResult:
    """Call ``candidate`` and ``reference`` on every case and report the first difference.

    The result is printed when ``verbose`` (so a bare call in a notebook shows it) and
    returned, so tests and readers can assert ``result.passed``.
    """
    result = _run(exercise, candidate, reference, cases, atol, rtol)
    if verbose:
        print(result)
    return result


def _run(exercise, candidate, reference, cases, atol, rtol) -> CheckResult:
    if not callable(candidate):
        return CheckResult(
            exercise,
            "failed",
            f"pass your function itself (not its result); got {describe(candidate)}",
        )
    for case in cases:
        expected = reference(*case.args, **case.kwargs)
        try:
            got = candidate(*_clone(case.args), **_clone(case.kwargs))
        except NotImplementedError:
            return CheckResult(
                exercise,
                "not attempted",
                "the stub still raises NotImplementedError; fill it in and run "
                "this cell again.",
            )
        except Exception as err:  # a reader's bug: report it, never a traceback
            return CheckResult(
                exercise,
                "failed",
                f"on {case.description}, your function raised "
                f"{type(err).__name__}: {err}",
            )
        problem = compare(expected, got, atol, rtol)
        if problem:
            return CheckResult(exercise, "failed", f"on {case.description}: {problem}")
    return CheckResult(
        exercise, "passed", f"all {len(cases)} hidden cases match the reference."
    )


def _clone(value: Any) -> Any:
    """Copy tensors so a candidate that works in place cannot change the hidden cases."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value
