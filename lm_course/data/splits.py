"""A fixed, seeded train/validation/test split that every reader gets identically."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Splits(Generic[T]):
    """Three disjoint lists of examples."""

    train: list[T]
    val: list[T]
    test: list[T]

    def __repr__(self) -> str:
        sizes = f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)}"
        return f"Splits({sizes})"


def split_examples(
    examples: Sequence[T],
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Splits[T]:
    """Shuffle ``examples`` with ``seed`` and cut them into train / val / test.

    The shuffle uses Python's own ``random.Random(seed)``, so the split does not depend
    on the PyTorch version or on any global random state.
    """
    for name, value in [
        ("val_fraction", val_fraction),
        ("test_fraction", test_fraction),
    ]:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data, got "
            f"{val_fraction} + {test_fraction}"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    n_test = round(len(order) * test_fraction)
    pick = [examples[i] for i in order]
    return Splits(
        train=pick[n_val + n_test :],
        val=pick[:n_val],
        test=pick[n_val : n_val + n_test],
    )
