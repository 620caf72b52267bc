"""What every chapter's checker tests share: a stub, the basic promises, and wrong
answers that any tensor exercise can be given (another device, a partial answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch


def stub(*args: Any, **kwargs: Any) -> Any:
    """A reader's untouched exercise stub."""
    raise NotImplementedError  # your code here


def failed(result: Any, *fragments: str) -> bool:
    """True when a check failed with a message containing every fragment."""
    text = f"{result.exercise}: {result.message}"
    return result.status == "failed" and all(f in text for f in fragments)


def assert_reference_passes_and_stub_is_not_attempted(
    check: Callable[..., Any],
    solution: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reference passes; the stub is reported, printed, and does not raise."""
    result = check(solution, verbose=False)
    assert result.passed, result
    result = check(stub, verbose=True)
    assert result.status == "not attempted"
    assert "[NOT ATTEMPTED YET]" in capsys.readouterr().out


def passes(check: Callable[..., Any], answer: Callable[..., Any]) -> bool:
    """Assert that a correct answer passes, showing the report when it does not."""
    result = check(answer, verbose=False)
    assert result.passed, result
    return True


def on_meta(solution: Callable[..., Any]) -> Callable[..., Any]:
    """A correct answer moved to the meta device, standing in for a CUDA tensor."""

    def answer(*args: Any, **kwargs: Any) -> Any:
        out = solution(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return out.to("meta")
        return type(out)(o.to("meta") for o in out)

    return answer


def last_case_only_raises(
    solution: Callable[..., Any], calls_before: int
) -> Callable[..., Any]:
    """A partial answer: right for the first ``calls_before`` cases, then it gives up
    with NotImplementedError; reported as failing, not as "not attempted"."""
    calls = []

    def answer(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > calls_before:
            raise NotImplementedError("this case is not handled yet")
        return solution(*args, **kwargs)

    return answer
