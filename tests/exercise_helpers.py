"""What every chapter's checker tests share: a stub, and the two basic promises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def stub(*args: Any, **kwargs: Any) -> Any:
    """A reader's untouched exercise stub."""
    raise NotImplementedError


def failed(result: Any, *fragments: str) -> bool:
    """True when a check failed with a message containing every fragment."""
    return result.status == "failed" and all(f in str(result) for f in fragments)


def assert_reference_passes_and_stub_is_not_attempted(
    check: Callable[..., Any],
    solution: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reference solution passes; the stub is reported, printed, and does not raise."""
    assert check(solution, verbose=False).passed
    result = check(stub, verbose=True)
    assert result.status == "not attempted"
    assert "[NOT ATTEMPTED YET]" in capsys.readouterr().out
