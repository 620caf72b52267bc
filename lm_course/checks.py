"""Argument checks, in one place, with one wording.

Every public boundary of the package (a config, a model's ``forward``, a command) checks
what it is given once, here, and nowhere deeper. A wrong *type* raises ``TypeError``, a
wrong *value* raises ``ValueError``, and both read the same everywhere::

    GPTConfig.dropout must be a number in [0, 1), got '0.1' (str)

``name`` is what the reader wrote: ``"GPTConfig.dropout"``, ``"idx"``, ``"--out"``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "describe",
    "check_int",
    "check_number",
    "check_bool",
    "check_choice",
    "check_token_ids",
    "check_targets",
]


def describe(value: Any) -> str:
    """``repr`` plus the type for anything that is not a plain number: ``'0.1' (str)``."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{text} ({type(value).__name__})"
    return text


def _interval(minimum: float | None, maximum: float | None, strict_max: bool) -> str:
    if minimum is None and maximum is None:
        return ""
    if maximum is None:
        return f" >= {minimum}"
    low = "-inf" if minimum is None else f"{minimum}"
    return f" in [{low}, {maximum}{')' if strict_max else ']'}"


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hint: str = "",
) -> int:
    """An integer (not a bool; NumPy integers are fine) within ``[minimum, maximum]``."""
    where = _interval(minimum, maximum, strict_max=False)
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer{where}, got {describe(value)}{hint}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer{where}, got {describe(value)}{hint}"
        ) from None
    if (minimum is not None and number < minimum) or (
        maximum is not None and number > maximum
    ):
        raise ValueError(f"{name} must be an integer{where}, got {number}{hint}")
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
    what = f"a finite number{' ' + bounds if bounds else ''}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be {what}, got {describe(value)}{hint}")
    number = float(value)
    too_low = minimum is not None and (
        number < minimum or (strict_min and number == minimum)
    )
    too_high = maximum is not None and (
        number > maximum or (strict_max and number == maximum)
    )
    if not math.isfinite(number) or too_low or too_high:
        raise ValueError(f"{name} must be {what}, got {value!r}{hint}")
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


def check_token_ids(
    idx: Any, vocab_size: int, name: str = "idx", *, values: bool = True
) -> Tensor:
    """``idx`` must be an integer tensor ``(batch, seq)`` of ids in ``[0, vocab_size)``.

    The type and shape checks cost nothing. The range check reads every id, which on a
    GPU waits for the device; ``values=False`` skips it where the caller knows the ids
    were checked already (the models skip it while ``torch.compile`` traces them).
    """
    if not isinstance(idx, Tensor):
        raise TypeError(f"{name} must be a tensor of token ids, got {describe(idx)}")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer token ids (torch.long), got dtype {idx.dtype}; "
            f"convert with {name}.long()"
        )
    if idx.dim() != 2:
        hint = f"; add a batch dimension with {name}.unsqueeze(0)" if idx.dim() == 1 else ""
        raise ValueError(
            f"{name} must have shape (batch, seq), got {tuple(idx.shape)}{hint}"
        )
    if idx.size(0) == 0 or idx.size(1) == 0:
        raise ValueError(
            f"{name} must hold at least one row and one token, got shape "
            f"{tuple(idx.shape)}"
        )
    if values:
        low, high = (int(v) for v in torch.aminmax(idx))
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains token id {bad}, outside the vocabulary "
                f"[0, {vocab_size - 1}] (vocab_size={vocab_size}); was it encoded with "
                "a different tokenizer?"
            )
    return idx


def check_targets(
    targets: Any,
    shape: tuple[int, ...],
    n_classes: int,
    name: str = "targets",
    *,
    ignore_index: int = -100,
    values: bool = True,
) -> Tensor:
    """Class ids of the given shape, each in ``[0, n_classes)`` or ``ignore_index``.

    Checked like inputs, so that a float tensor is not silently truncated to integers and
    an id out of range gives this message, not an ``IndexError`` inside the loss (or a
    device-side assert on a GPU).
    """
    if not isinstance(targets, Tensor):
        raise TypeError(
            f"{name} must be a tensor of class ids, got {describe(targets)}"
        )
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer class ids (torch.long), got dtype "
            f"{targets.dtype}; convert with {name}.long() if they are whole numbers"
        )
    if tuple(targets.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {tuple(targets.shape)}"
        )
    if values and targets.numel():
        kept = targets[targets != ignore_index]
        if kept.numel():
            low, high = (int(v) for v in torch.aminmax(kept))
            if low < 0 or high >= n_classes:
                bad = low if low < 0 else high
                raise ValueError(
                    f"{name} contains {bad}, outside [0, {n_classes - 1}] "
                    f"(use {ignore_index} for positions to ignore)"
                )
    return targets
