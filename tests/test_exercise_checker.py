"""The shared checker machinery: what every check holds an answer to, how it reports.

Each test names the class of weakness it closes: the promised type and dtype, inputs
changed in place, built-ins reached by another name, a report that raises or calls a
partial answer "not attempted", tolerances.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import failed, stub

from lm_course.exercises import Case, CheckResult, Forbid, compare, run_cases


def reference(x: torch.Tensor) -> torch.Tensor:
    return x * 2


CASES = [
    Case("a vector of ones", (torch.ones(3),)),
    Case("a 2x2 matrix", (torch.arange(4.0).view(2, 2),)),
]


def check(fn: Any, cases: list[Case] = CASES, **kwargs: Any) -> CheckResult:
    return run_cases("double", fn, reference, cases, verbose=False, **kwargs)


def test_pass_and_a_printed_result(capsys) -> None:
    assert check(lambda x: x + x).passed
    run_cases("double", lambda x: x + x, reference, CASES)
    assert capsys.readouterr().out == (
        "[PASSED] double: all 2 hidden cases match the reference.\n"
    )


# ------------------------------------------------------------------ not attempted


def test_not_attempted_only_for_an_untouched_stub(capsys) -> None:
    def with_message(x):
        """A stub with a docstring and a message."""
        raise NotImplementedError("your code here")

    class Callable:
        def __call__(self, x):
            raise NotImplementedError

    for untouched in (stub, with_message, Callable()):
        assert check(untouched).status == "not attempted"
    result = run_cases("double", stub, reference, CASES)
    assert result.status == "not attempted"
    assert "NOT ATTEMPTED YET" in capsys.readouterr().out


def test_a_partial_answer_that_gives_up_on_one_case_is_failing() -> None:
    def matrices_later(x):
        if x.dim() > 1:
            raise NotImplementedError("matrices later")
        return x * 2

    def gives_up_after_work(x):
        y = x * 2
        if y.numel() > 3:
            raise NotImplementedError
        return y

    assert failed(
        check(matrices_later),
        "on a 2x2 matrix",
        "raised NotImplementedError: matrices later",
    )
    assert failed(check(gives_up_after_work), "on a 2x2 matrix", "NotImplementedError")


def test_not_implemented_inside_another_function_is_failing() -> None:
    def helper(x):
        raise NotImplementedError

    assert failed(check(lambda x: helper(x)), "NotImplementedError")


# ------------------------------------------------------------------ values and reports


def test_wrong_values_name_the_case_and_the_first_wrong_entry() -> None:
    result = check(lambda x: x * 3)
    assert failed(result, "on a vector of ones", "first at index (0,)", "expected 2")


def test_wrong_shape_exceptions_and_not_a_function_are_reported() -> None:
    assert failed(
        check(lambda x: x.flatten() * 2), "expected shape (2, 2), got shape (4,)"
    )
    assert failed(check(lambda x: x @ torch.ones(7)), "raised RuntimeError")
    assert failed(check(3), "pass your function itself")


def test_hints_explain_a_known_error() -> None:
    def boom(x):
        raise RuntimeError("Trying to backward through the graph a second time\nmore")

    result = check(boom, hints={"backward through the graph": "Detach the state."})
    assert failed(
        result, "raised RuntimeError: Trying to backward", "Detach the state."
    )
    assert "more" not in result.message  # only the first line of a long error


def test_messages_wrap_at_88_columns() -> None:
    result = check(lambda x: torch.full_like(x, 12345.678))
    assert len(result.message) > 88
    assert all(len(line) <= 88 for line in str(result).splitlines())


# ------------------------------------------------------------------ robust reporting


def test_an_answer_on_another_device_is_reported_not_raised() -> None:
    assert failed(check(lambda x: (x * 2).to("meta")), "on meta", "on cpu")


class LyingTensor(torch.Tensor):
    """A tensor that breaks every operation on it, as a CUDA tensor does next to a CPU
    one (there is no GPU in the tests)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.__repr__ or getattr(func, "__name__", "") == "__get__":
            return super().__torch_function__(func, types, args, kwargs)
        raise RuntimeError("Expected all tensors to be on the same device")


def test_a_tensor_that_breaks_comparison_is_reported_not_raised() -> None:
    result = check(lambda x: (x * 2).as_subclass(LyingTensor))
    assert failed(result, "LyingTensor")


def test_an_answer_whose_comparison_raises_is_reported() -> None:
    class Weird:
        def __eq__(self, other):
            raise ValueError("cannot compare")

    cases = [Case("three", (3,))]
    result = run_cases("same", lambda n: Weird(), lambda n: "x", cases, verbose=False)
    assert failed(result, "expected a str")
    result = run_cases(
        "same", lambda n: Weird(), lambda n: Weird(), cases, verbose=False
    )
    assert failed(result, "raised ValueError: cannot compare")


def test_a_reader_seeding_does_not_change_the_notebook_random_state() -> None:
    def reseeds(x):
        torch.manual_seed(0)
        return x * 2

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert check(reseeds).passed
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------------ types and mutation


def test_inputs_changed_in_place_are_wrong_and_the_cases_stay_intact() -> None:
    result = check(lambda x: x.mul_(2))
    assert failed(result, "on a vector of ones", "changed its argument `x` in place")
    assert torch.equal(CASES[0].args[0], torch.ones(3))

    def appends(ids):
        ids.append(0)
        return len(ids) - 1

    lists = [Case("[1, 2]", ([1, 2],))]
    result = run_cases("count", appends, len, lists, verbose=False)
    assert failed(result, "changed its argument `ids` in place")


@pytest.mark.parametrize(
    ("expected", "got", "fragment"),
    [
        (2.5, torch.tensor(2.5), "expected a Python float, got a tensor (use .item())"),
        (2.5, torch.tensor(2.5, requires_grad=True) * 1, "keeps an autograd graph"),
        (2.5, "2.50", "expected a Python float, got a str"),
        ([1, 2], (i for i in [1, 2]), "expected a list, got a generator"),
        ([1, 2], (1, 2), "expected a list, got a tuple"),
        ([1, 2], [1, torch.tensor(2)], "item 1: expected an int, got a tensor"),
        ([1, 2], [1, True], "expected an int, got a bool"),
        ("ab", ["a", "b"], "expected a str, got a list"),
        (
            torch.zeros(2),
            torch.zeros(2, dtype=torch.float64),
            "expected dtype torch.float32",
        ),
        (torch.zeros(2, dtype=torch.bool), torch.zeros(2), "expected dtype torch.bool"),
        (torch.zeros(2), [0.0, 0.0], "expected a tensor, got a list"),
    ],
)
def test_the_promised_type_and_dtype(expected, got, fragment) -> None:
    problem = compare(expected, got)
    assert problem is not None and fragment in problem, problem


def test_float_dtypes_accepts_what_an_exercise_leaves_open() -> None:
    expected = torch.full((2,), 0.5, dtype=torch.float64)
    got = torch.full((2,), 0.5)
    assert compare(expected, got) is not None
    assert compare(expected, got, float_dtypes=(torch.float32, torch.float64)) is None


def test_named_parts_of_a_tuple_answer() -> None:
    class Step(NamedTuple):
        pair: tuple[int, int]
        merged: list[int]

    problem = compare(Step((1, 2), [5, 3]), ((1, 2), [5, 4]))
    assert problem is not None and problem == "merged: expected [5, 3], got [5, 4]"


def test_long_id_lists_show_the_first_difference() -> None:
    expected = list(range(1000))
    got = expected[:500] + [7] + expected[501:]
    problem = compare(expected, got)
    assert problem is not None
    assert "item 500 differs (expected 500, got 7)" in problem
    assert "[..., 497, 498, 499, 500, 501" in problem


# ------------------------------------------------------------------ tolerances and nan


def test_nan_and_inf_must_be_where_the_reference_has_them() -> None:
    expected = torch.tensor([0.5, math.nan, -math.inf])
    assert compare(expected, expected.clone()) is None
    problem = compare(expected, torch.tensor([math.nan, math.nan, -math.inf]))
    assert problem is not None and "non-finite value (nan) at index (0,)" in problem
    assert compare(expected, torch.tensor([0.5, 0.0, -math.inf])) is not None


def test_a_case_can_widen_the_tolerance() -> None:
    def slightly_off(x):
        return x * 2 * (1 + 1e-4)

    assert not check(slightly_off).passed
    wide = [Case(c.description, c.args, rtol=1e-3) for c in CASES]
    assert check(slightly_off, wide).passed


# ------------------------------------------------------------- forbidding built-ins

NO_SOFTMAX = Forbid("softmax", "softmin", why="write it yourself")

ROUTES = {
    "torch.softmax": lambda x: torch.softmax(x, -1),
    "Tensor.softmax": lambda x: x.softmax(-1),
    "F.softmax": lambda x: F.softmax(x, -1),
    "log_softmax().exp()": lambda x: x.log_softmax(-1).exp(),
    "F.log_softmax": lambda x: F.log_softmax(x, -1).exp(),
    "torch.special.softmax": lambda x: torch.special.softmax(x, -1),
    "torch.special.log_softmax": lambda x: torch.special.log_softmax(x, -1).exp(),
    "F.softmin": lambda x: F.softmin(-x, -1),
    "nn.Softmax": lambda x: torch.nn.Softmax(-1)(x),
    "torch._softmax": lambda x: torch._softmax(x, -1, False),
    "torch.ops.aten._softmax": lambda x: torch.ops.aten._softmax(x, -1, False),
    "F.cross_entropy": lambda x: -F.cross_entropy(x, torch.zeros(2, dtype=torch.long)),
}


@pytest.mark.parametrize("route", ROUTES)
def test_forbid_blocks_every_route_to_the_operation(route: str) -> None:
    cases = [Case("two rows", (torch.randn(2, 5),))]
    result = run_cases(
        "softmax",
        ROUTES[route],
        lambda x: x.softmax(-1),
        cases,
        forbid=NO_SOFTMAX,
        verbose=False,
    )
    assert failed(result, "softmax", "your function called", "write it yourself")


def test_forbid_allows_the_building_blocks_and_switches_off_afterwards() -> None:
    cases = [Case("two rows", (torch.randn(2, 5),))]

    def by_logsumexp(x):
        return (x - x.logsumexp(-1, keepdim=True)).exp()

    result = run_cases(
        "softmax",
        by_logsumexp,
        lambda x: x.softmax(-1),
        cases,
        forbid=NO_SOFTMAX,
        verbose=False,
    )
    assert result.passed, result
    torch.testing.assert_close(torch.softmax(torch.zeros(2), -1), torch.full((2,), 0.5))
