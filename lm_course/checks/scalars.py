"""Checks of plain arguments: integers, numbers, flags, choices and configs.

A wrong *type* raises ``TypeError``, a wrong *value* raises ``ValueError``; see
:mod:`lm_course.checks` for the wording.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor

C = TypeVar("C")


def describe(value: Any) -> str:
    """``repr``, plus the type for anything but a plain number: ``'0.1' (str)``."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{text} ({type(value).__name__})"
    return text


def _interval(minimum: float | None, maximum: float | None) -> str:
    if minimum is None and maximum is None:
        return ""
    if maximum is None:
        return f" >= {minimum}"
    low = "-inf" if minimum is None else f"{minimum}"
    return f" in [{low}, {maximum}]"


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hint: str = "",
) -> int:
    """An integer (not a bool; NumPy integers are fine) in ``[minimum, maximum]``."""
    what = f"{name} must be an integer{_interval(minimum, maximum)}"
    if isinstance(value, bool):
        raise TypeError(f"{what}, got {describe(value)}{hint}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what}, got {describe(value)}{hint}") from None
    if (minimum is not None and number < minimum) or (
        maximum is not None and number > maximum
    ):
        raise ValueError(f"{what}, got {number}{hint}")
    return number


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
    hint: str = "",
) -> float:
    """A finite real number (int or float, not a bool) within the given bounds.

    NaN and infinity are always refused: a learning rate of ``inf`` or a smoothing
    constant of ``nan`` never means what the reader intended.
    """
    low = "" if minimum is None else f"{'>' if strict_min else '>='} {minimum}"
    high = "" if maximum is None else f"{'<' if strict_max else '<='} {maximum}"
    bounds = " and ".join(part for part in (low, high) if part)
    what = f"{name} must be a finite number{' ' + bounds if bounds else ''}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what}, got {describe(value)}{hint}")
    number = float(value)
    too_low = minimum is not None and (
        number < minimum or (strict_min and number == minimum)
    )
    too_high = maximum is not None and (
        number > maximum or (strict_max and number == maximum)
    )
    if not math.isfinite(number) or too_low or too_high:
        raise ValueError(f"{what}, got {value!r}{hint}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` exactly (not 0/1, not the string ``"false"``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    options = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options}, got {describe(value)}")
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def config_from_dict(cls: type[C], data: Any, source: str | Path | None = None) -> C:
    """Build the dataclass ``cls`` from ``data`` read from a file (``source``).

    An unknown or missing field gives an error naming the file, the field and what to
    do, not ``TypeError: __init__() got an unexpected keyword argument``.
    """
    where = f" in {source}" if source is not None else ""
    if not isinstance(data, dict):
        raise ValueError(
            f"{cls.__name__}{where} must be a JSON object of fields, got "
            f"{describe(data)}"
        )
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    known = [f.name for f in fields]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field {unknown[0]!r}{where}; known fields: "
            f"{known}. Was the file written by another version of the course? Remove "
            "the field or write the file again"
        )
    required = dataclasses.MISSING
    for f in fields:
        if (
            f.name not in data
            and f.default is required
            and f.default_factory is required
        ):
            raise ValueError(
                f"{cls.__name__}{where} has no field {f.name!r}, which is required; "
                "the file is incomplete: write it again"
            )
    try:
        return cls(**data)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{err}{where}") from None


class FromDict:
    """Gives a dataclass config ``from_dict(data, source=path)`` (config_from_dict)."""

    @classmethod
    def from_dict(cls: type[C], data: Any, source: str | Path | None = None) -> C:
        """The config from ``dataclasses.asdict`` output, read from ``source``."""
        return config_from_dict(cls, data, source)
