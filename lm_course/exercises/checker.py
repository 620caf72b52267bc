"""The machinery behind every exercise checker.

A reader writes a function in a notebook and passes it to a chapter's ``check_...``
function. The check runs hidden :class:`Case` s through the reader's function and
through the reference solution, and answers with a :class:`CheckResult`: a pass, a
description of the first case that failed (which input, what was expected, what came
back), or "not attempted yet" for an untouched stub. A check never raises, so a notebook
with untouched stubs still runs from top to bottom.

What :func:`run_cases` holds every answer to, so that a chapter's module states only its
cases and what is special about its exercise:

* **The promised type.** A float is a Python ``float`` (not a tensor, not a string), a
  list is a ``list`` (not a generator or a tuple), a tensor has the reference's shape,
  dtype and device. An exercise that promises only "a float tensor" passes
  ``float_dtypes``. A reference that returns a named tuple names the parts of the answer
  in failure messages.
* **Values within float precision.** Floating values are compared with ``atol`` and
  ``rtol``, chosen to admit every correct float32 implementation (another order of
  summation, a ``logsumexp``) and no mistake; a :class:`Case` can widen them where its
  inputs leave float32 less precise. ``nan`` and ``inf`` must be where the reference
  has them; integers and booleans must be equal.
* **Inputs left alone.** The reader's function gets copies of the inputs; changing one
  in place fails the check, since the exercises ask for new results.
* **No built-in shortcut.** ``forbid`` (a :class:`Forbid`) blocks an operation, by every
  route to it, while the reader's function runs.
* **A clear report.** Everything the answer does, the comparison included, runs inside
  one guard: an answer that raises, or returns a tensor on another device, is reported,
  never a traceback. "Not attempted" is said only when the function raises
  ``NotImplementedError`` before doing anything else; ``hints`` add advice to known
  error messages.

A new chapter's check reads like this::

    def check_double(fn, verbose=True):
        cases = [Case("100 000 random numbers", (torch.randn(100_000),))]
        return run_cases("double", fn, solution_double, cases, verbose=verbose)
"""

from __future__ import annotations

import contextlib
import dis
import inspect
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["Case", "CheckResult", "Forbid", "compare", "describe", "run_cases"]


@dataclass(frozen=True)
class Case:
    """One hidden case: a description a reader understands, and the call to make.

    ``atol`` and ``rtol``, when given, replace the check's tolerances for this case.
    """

    description: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    atol: float | None = None
    rtol: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check: ``status`` is "passed", "failed" or "not attempted"."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        mark = {"passed": "PASSED", "failed": "FAILED"}.get(self.status)
        # Wrapped at the book's 88 columns: a long message must not scroll sideways.
        return textwrap.fill(
            f"[{mark or 'NOT ATTEMPTED YET'}] {self.exercise}: {self.message}",
            width=88,
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class ForbiddenOperation(RuntimeError):
    """Raised when a reader's function calls an operation its exercise asks to write."""


class Forbid:
    """Block every operation whose name contains one of ``names``, by any route to it.

    ``Forbid("softmax", "softmin", why="...")`` blocks ``torch.softmax``, the method,
    ``F.softmax``, ``torch.special.softmax``, ``log_softmax``, ``nn.Softmax`` and the
    kernels behind them. Two PyTorch hooks see every operation a tensor takes part in:
    a :class:`TorchFunctionMode` sees the Python API call (``lstm_cell``, whose work is
    done by other kernels) and a :class:`TorchDispatchMode` the kernel it runs
    (``_softmax``, whichever function asked for it).
    """

    def __init__(self, *names: str, why: str) -> None:
        self.names = names
        self.why = why

    def refuse(self, name: str) -> None:
        short = name.split("::")[-1].split(".")[0]  # aten::_softmax.default: _softmax
        if any(forbidden in short for forbidden in self.names):
            raise ForbiddenOperation(f"your function called {short}: {self.why}")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with _FunctionGuard(self), _KernelGuard(self):
            yield


class _FunctionGuard(TorchFunctionMode):
    def __init__(self, forbid: Forbid) -> None:
        super().__init__()
        self.forbid = forbid

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.forbid.refuse(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


class _KernelGuard(TorchDispatchMode):
    def __init__(self, forbid: Forbid) -> None:
        super().__init__()
        self.forbid = forbid

    def __torch_dispatch__(
        self,
        func: torch._ops.OpOverload,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.forbid.refuse(func.name())
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------- describing values


def describe(value: Any, max_items: int = 8) -> str:
    """A short, readable rendering of a value for failure messages."""
    if isinstance(value, Tensor):
        shape = tuple(value.shape)
        if value.device.type != "cpu" or type(value) not in _PLAIN_TENSORS:
            return f"a {type(value).__name__} of shape {shape} on {value.device}"
        items = ", ".join(_number(x) for x in value.detach().flatten()[:max_items])
        more = ", ..." if value.numel() > max_items else ""
        return f"tensor of shape {shape} [{items}{more}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


_PLAIN_TENSORS = (Tensor, torch.nn.Parameter)


def _number(x: Any) -> str:
    """One entry of a tensor (or a number) as text: ``True``, ``3``, ``0.25``."""
    value = x.item() if isinstance(x, Tensor) else x
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _kind(value: Any) -> str:
    """The type of a value in words: 'a list', 'a generator', 'a tensor', 'an int'."""
    name = "tensor" if isinstance(value, Tensor) else type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


# ---------------------------------------------------------------- comparing answers


def compare(
    expected: Any,
    got: Any,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    float_dtypes: Sequence[torch.dtype] = (),
) -> str | None:
    """``None`` when ``got`` is what ``expected`` promises, else a sentence: why not.

    ``float_dtypes``: floating dtypes accepted in place of the reference's, for
    exercises that promise only "a float tensor".
    """
    if isinstance(expected, Tensor):
        return _compare_tensors(expected, got, atol, rtol, float_dtypes)
    if isinstance(expected, list | tuple):
        return _compare_sequences(expected, got, atol, rtol, float_dtypes)
    if isinstance(expected, float):
        if not isinstance(got, float):
            graph = (
                " that keeps an autograd graph" if getattr(got, "grad_fn", None) else ""
            )
            advice = " (use .item())" if isinstance(got, Tensor) else ""
            return f"expected a Python float, got {_kind(got)}{graph}{advice}"
        both_nan = got != got and expected != expected
        if (
            got == expected
            or both_nan
            or abs(got - expected) <= atol + rtol * abs(expected)
        ):
            return None
        return f"expected {expected:.7g}, got {got:.7g}"
    wanted = int if type(expected) is int else type(expected)
    if isinstance(got, bool) is not isinstance(expected, bool) or not isinstance(
        got, wanted
    ):
        return f"expected {_kind(expected)}, got {_kind(got)}: {describe(got)}"
    return None if got == expected else f"expected {expected!r}, got {describe(got)}"


def _compare_sequences(
    expected: Sequence[Any],
    got: Any,
    atol: float,
    rtol: float,
    float_dtypes: Sequence[torch.dtype],
) -> str | None:
    base = tuple if isinstance(expected, tuple) else list
    if not isinstance(got, base):
        return f"expected a {base.__name__}, got {_kind(got)}"
    if len(got) != len(expected):
        return f"expected {len(expected)} items, got {len(got)}"
    names = getattr(expected, "_fields", None)  # a named tuple names its parts
    for i, (e, g) in enumerate(zip(expected, got)):
        problem = compare(e, g, atol, rtol, float_dtypes)
        if problem is None:
            continue
        if names:
            return f"{names[i]}: {problem}"
        if type(g) is not type(e) or not isinstance(e, int | str):
            return f"item {i}: {problem}"
        # Ids read best side by side: whole when short, else around the difference.
        if len(expected) <= 8:
            return f"expected {_excerpt(expected, 0)}, got {_excerpt(got, 0)}"
        start = max(0, i - 3)
        return (
            f"item {i} differs ({problem}): expected {_excerpt(expected, start)}, "
            f"got {_excerpt(got, start)}"
        )
    return None


def _excerpt(items: Sequence[Any], start: int, width: int = 8) -> str:
    shown = ", ".join(repr(x) for x in items[start : start + width])
    before = "..., " if start > 0 else ""
    after = ", ..." if start + width < len(items) else ""
    brackets = "()" if isinstance(items, tuple) else "[]"
    return f"{brackets[0]}{before}{shown}{after}{brackets[1]}"


def _compare_tensors(
    expected: Tensor,
    got: Any,
    atol: float,
    rtol: float,
    float_dtypes: Sequence[torch.dtype],
) -> str | None:
    if not isinstance(got, Tensor):
        return f"expected a tensor, got {_kind(got)}: {describe(got)}"
    if type(got) not in _PLAIN_TENSORS:
        return f"expected a plain torch.Tensor, got a {type(got).__name__}"
    if got.device != expected.device:
        return (
            f"expected a tensor on {expected.device}, where the inputs are; got one "
            f"on {got.device}"
        )
    if got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if got.dtype != expected.dtype and not (
        expected.is_floating_point() and got.dtype in float_dtypes
    ):
        return f"expected dtype {expected.dtype}, got {got.dtype}"
    if not expected.is_floating_point():
        wrong = got != expected
        head = f"{int(wrong.sum())} of {wrong.numel()} entries differ"
    else:
        got, expected = got.detach().double(), expected.detach().double()
        wrong = ~torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        broken = wrong & ~got.isfinite() & expected.isfinite()
        if broken.any():
            index = tuple(broken.nonzero()[0].tolist())
            return (
                f"got a non-finite value ({got[index].item()}) at index {index}, where "
                f"the reference has {expected[index].item():.4g}"
            )
        gap = (got - expected).abs().nan_to_num(nan=float("inf"))[wrong]
        head = f"values differ by up to {gap.max().item() if wrong.any() else 0:.3g}"
    if not wrong.any():
        return None
    index = tuple(wrong.nonzero()[0].tolist())
    return (
        f"{head}, first at index {index} (expected {_number(expected[index])}, got "
        f"{_number(got[index])}): expected {describe(expected)}, got {describe(got)}"
    )


# ---------------------------------------------------------------- running a check


def run_cases(
    exercise: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Case],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    float_dtypes: Sequence[torch.dtype] = (),
    forbid: Forbid | None = None,
    call: Callable[..., Any] | None = None,
    hints: Mapping[str, str] | None = None,
    verbose: bool = True,
) -> CheckResult:
    """Run ``candidate`` and ``reference`` on every case; report the first difference.

    Args:
        exercise: the name printed in the result.
        candidate: the reader's function.
        reference: the solution it is compared against.
        cases: the hidden cases, in the order they are tried.
        atol, rtol, float_dtypes: how close an answer must be; see :func:`compare`.
        forbid: operations the reader's function may not use.
        call: ``call(function, *case.args, **case.kwargs)`` runs one case, for cases
            that need more than a call on their arguments (building a model to train).
            Such a case makes its own inputs, so they are not checked for changes.
        hints: advice added to an error whose message contains the key.
        verbose: print the result (so that a bare call in a notebook shows it).

    Returns:
        The result; tests assert ``result.passed``.
    """
    if not callable(candidate):
        result = CheckResult(
            exercise,
            "failed",
            f"pass your function itself (not its result); got {describe(candidate)}",
        )
    else:
        result = CheckResult(
            exercise, "passed", f"all {len(cases)} hidden cases match the reference."
        )
        with torch.random.fork_rng(devices=[]):  # a reader's seeding stays in here
            for case in cases:
                tolerance = (
                    atol if case.atol is None else case.atol,
                    rtol if case.rtol is None else case.rtol,
                    float_dtypes,
                )
                problem = _try_case(
                    candidate, reference, case, call, forbid, hints or {}, tolerance
                )
                if problem is _NOT_ATTEMPTED:
                    result = CheckResult(exercise, "not attempted", problem)
                    break
                if problem is not None:
                    message = f"on {case.description}: {problem}"
                    result = CheckResult(exercise, "failed", message)
                    break
    if verbose:
        print(result)
    return result


_NOT_ATTEMPTED = (
    "the stub still raises NotImplementedError; fill it in and run this cell again."
)


def _try_case(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    case: Case,
    call: Callable[..., Any] | None,
    forbid: Forbid | None,
    hints: Mapping[str, str],
    tolerance: tuple[float, float, Sequence[torch.dtype]],
) -> str | None:
    """Run one case: ``None`` when the answer matches, else what is wrong with it."""
    if call is None:
        expected = reference(*_clone(case.args), **_clone(case.kwargs))
    else:
        expected = call(reference, *case.args, **case.kwargs)
    args, kwargs = _clone(case.args), _clone(case.kwargs)
    guard = forbid.active() if forbid is not None else contextlib.nullcontext()
    # Everything the answer does runs in here, the comparison too: an answer on another
    # device, or one that breaks the comparison, is reported like any other mistake.
    try:
        with guard:
            if call is None:
                got = candidate(*args, **kwargs)
            else:
                got = call(candidate, *args, **kwargs)
        changed = None if call else _changed_input(candidate, case, args, kwargs)
        return changed or compare(expected, got, *tolerance)
    except NotImplementedError as err:
        return (
            _NOT_ATTEMPTED if _untouched_stub(err, candidate) else _raised(err, hints)
        )
    except ForbiddenOperation as err:
        return str(err)
    except Exception as err:  # a reader's bug: report it, never a traceback
        return _raised(err, hints)


def _raised(err: Exception, hints: Mapping[str, str]) -> str:
    """'your function raised ValueError: ...', with advice for a known error."""
    text = (str(err).strip().split("\n") or [""])[0]
    if len(text) > 200:
        text = text[:197] + "..."
    advice = [hint for fragment, hint in hints.items() if fragment in str(err)]
    return " ".join([f"your function raised {type(err).__name__}: {text}", *advice])


def _untouched_stub(err: BaseException, fn: Callable[..., Any]) -> bool:
    """True when ``fn`` itself raised ``err`` before running anything but the raise.

    A partial answer that raises ``NotImplementedError`` for some inputs has run a test
    (an ``if``) first: it is reported as failing, not as not attempted.
    """
    code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if code is None or tb is None or tb.tb_frame.f_code is not code:
        return False
    for instruction in dis.get_instructions(code):
        if instruction.offset >= tb.tb_lasti:
            return True
        if instruction.opname not in _STUB_OPCODES or (
            instruction.opname == "LOAD_GLOBAL"
            and instruction.argval != "NotImplementedError"
        ):
            return False
    return False


# The bytecode of `raise NotImplementedError` and `raise NotImplementedError("...")`
# (Python 3.14 loads the exception with LOAD_COMMON_CONSTANT).
_STUB_OPCODES = {
    *("RESUME", "NOP", "CACHE", "EXTENDED_ARG", "COPY_FREE_VARS", "MAKE_CELL"),
    *("LOAD_GLOBAL", "LOAD_CONST", "LOAD_COMMON_CONSTANT", "PUSH_NULL", "PRECALL"),
    *("CALL", "KW_NAMES", "CALL_FUNCTION"),  # CALL_FUNCTION: Python 3.10
}


def _clone(value: Any) -> Any:
    """A copy of the tensors and containers in ``value``, for one function to use."""
    if isinstance(value, Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, tuple | list):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _same(original: Any, used: Any) -> bool:
    """Whether ``used``, the copy a reader's function had, still equals ``original``."""
    if isinstance(original, Tensor):
        if not isinstance(used, Tensor) or used.shape != original.shape:
            return False
        if used.dtype != original.dtype:
            return False
        both_nan = (
            used.isnan() & original.isnan() if used.is_floating_point() else False
        )
        return bool(((used == original) | both_nan).all())
    if isinstance(original, tuple | list):
        return (
            type(used) is type(original)
            and len(used) == len(original)
            and all(_same(o, u) for o, u in zip(original, used))
        )
    if isinstance(original, dict):
        return type(used) is dict and all(
            _same(o, used.get(k)) for k, o in original.items()
        )
    return True  # numbers and strings cannot be changed in place


def _changed_input(
    fn: Callable[..., Any], case: Case, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str | None:
    """A sentence naming the first argument ``fn`` changed in place, or ``None``."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    changed = [
        f"`{names[i]}`" if i < len(names) else f"number {i + 1}"
        for i, (original, used) in enumerate(zip(case.args, args))
        if not _same(original, used)
    ] + [f"`{k}`" for k, v in case.kwargs.items() if not _same(v, kwargs.get(k))]
    if not changed:
        return None
    return (
        f"your function changed its argument {changed[0]} in place; the exercise asks "
        "for a new result and leaves its inputs as they were (write `x = x - m`, not "
        "`x -= m`)"
    )
