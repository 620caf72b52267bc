"""Reference curves: what a named training run looks like, measured over a few seeds.

A reader who re-runs a training cell gets a loss curve that differs from the book's in
its last digits (another seed, another machine, another number of threads). Is it a bug
or normal variation? Each named run ships a reference, a small JSON file in this
package: the mean loss and its standard deviation over seeds at every logged step, and
the final loss of every seed. :func:`lm_course.plotting.plot_against_reference` draws
the reader's curve over the band, and :meth:`Reference.verdict` says in words whether
the final loss is where it should be.

References are recorded with ``python -m lm_course.reference RECIPE --seeds 3``
(see :mod:`lm_course.reference.record`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..checks import check_number

FORMAT = 1
BAND = 2.0  # the band drawn and checked is mean ± BAND standard deviations
LABELS = {"train_loss": "training loss (batch)", "val_loss": "validation loss"}


@dataclass(frozen=True)
class Curve:
    """A loss curve summarised over seeds: ``steps``, ``mean`` and ``std``, aligned."""

    steps: list[int]
    mean: list[float]
    std: list[float]

    def band(self, width: float = BAND) -> tuple[list[float], list[float]]:
        """``(lower, upper)``: ``mean ± width * std`` at every step."""
        lower = [m - width * s for m, s in zip(self.mean, self.std, strict=True)]
        upper = [m + width * s for m, s in zip(self.mean, self.std, strict=True)]
        return lower, upper


@dataclass(frozen=True)
class Final:
    """The last value of a curve: one per seed, their mean and standard deviation."""

    values: list[float]
    mean: float
    std: float


@dataclass(frozen=True)
class Reference:
    """The reference of one named run (a zoo recipe), loaded from its JSON file.

    Attributes:
        recipe: the recipe's name.
        seeds: the seeds it was measured with.
        config: the recipe's config when it was measured (a stale reference shows here).
        curves: ``"train_loss"`` / ``"val_loss"`` -> :class:`Curve`.
        final: the same names -> :class:`Final`.
        recorded_on: device, threads, torch version.
    """

    recipe: str
    seeds: list[int]
    config: dict[str, Any]
    curves: dict[str, Curve]
    final: dict[str, Final]
    recorded_on: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        """Rebuild a reference from its JSON (see :mod:`lm_course.reference.record`)."""
        if data.get("format") != FORMAT:
            raise ValueError(
                f"reference format {data.get('format')!r}; this version reads {FORMAT}"
            )
        return cls(
            recipe=data["recipe"],
            seeds=list(data["seeds"]),
            config=dict(data["config"]),
            curves={name: Curve(**curve) for name, curve in data["curves"].items()},
            final={name: Final(**final) for name, final in data["final"].items()},
            recorded_on=dict(data.get("recorded_on", {})),
        )

    def expected(self, metric: str = "val_loss") -> tuple[float, float]:
        """``(mean, std)`` of the final ``metric`` over the reference's seeds."""
        if metric not in self.final:
            raise ValueError(
                f"the reference of {self.recipe!r} has no {metric!r}; it has "
                f"{sorted(self.final)}"
            )
        return self.final[metric].mean, self.final[metric].std

    def within(
        self, value: float, metric: str = "val_loss", width: float = BAND
    ) -> bool:
        """True if ``value`` is within ``mean ± width * std`` of the final ``metric``.

        ``width`` counts standard deviations over the reference's seeds.
        """
        value = check_number("value", value)
        mean, std = self.expected(metric)
        return abs(value - mean) <= width * std

    def verdict(self, history: Any, metric: str = "val_loss") -> str:
        """A sentence comparing the final ``metric`` of ``history`` with the reference.

        ``history`` is a :class:`~lm_course.training.History` or its ``to_dict()``.
        """
        value = final_value(history, metric)
        mean, std = self.expected(metric)
        label = LABELS.get(metric, metric)
        where = "within" if self.within(value, metric) else "outside"
        return (
            f"final {label} {value:.3f}: {where} the expected {mean:.3f} ± "
            f"{BAND * std:.3f} (mean ± {BAND:g} sd over {len(self.seeds)} seeds)"
        )


def _series(record: Mapping[str, Any], metric: str) -> tuple[list[int], list[float]]:
    """The steps and values of ``metric`` in a history dict."""
    steps = record.get("eval_steps" if metric.startswith("val") else "steps") or []
    return list(steps), list(record.get(metric) or [])


def history_dict(history: Any) -> Mapping[str, Any]:
    """A :class:`~lm_course.training.History` as a dict (a dict is returned as is)."""
    return history if isinstance(history, Mapping) else history.to_dict()


def final_value(history: Any, metric: str = "val_loss") -> float:
    """The last recorded ``metric`` of a history."""
    _, values = _series(history_dict(history), metric)
    if not values or not math.isfinite(values[-1]):
        raise ValueError(f"the history has no finite {metric!r} at its end")
    return float(values[-1])


def reference_names() -> list[str]:
    """The recipes that have a reference in the package, sorted."""
    folder = resources.files(__name__)
    return sorted(
        item.name.removesuffix(".json")
        for item in folder.iterdir()
        if item.name.endswith(".json")
    )


def load_reference(recipe: str) -> Reference:
    """The shipped reference of ``recipe`` (e.g. ``"tiny-char-gpt"``)."""
    file = resources.files(__name__) / f"{recipe}.json"
    if not isinstance(recipe, str) or not file.is_file():
        raise ValueError(
            f"no reference for {recipe!r}; the package has "
            f"{', '.join(reference_names()) or 'none'}"
        )
    return Reference.from_dict(json.loads(file.read_text(encoding="utf-8")))


__all__ = [
    "BAND",
    "Curve",
    "Final",
    "Reference",
    "final_value",
    "history_dict",
    "load_reference",
    "reference_names",
]
