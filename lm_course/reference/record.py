"""Record a reference: train a recipe with several seeds and summarise its curves.

::

    python -m lm_course.reference tiny-char-gpt --seeds 3    # the package's file
    python -m lm_course.reference ch04-gpt --seeds 3 --out ref.json    # any file

Each seed's model goes through the model cache (:func:`lm_course.zoo.load`), so seeds
already trained are not trained again. The JSON holds, for the training loss at every
logged step and the validation loss at every evaluation, the mean and the standard
deviation over seeds (the sample one, n - 1), and the final value of every seed. Record
with one thread (``OMP_NUM_THREADS=1``), as the book's outputs are.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..checks import check_int
from . import FORMAT, history_dict

DIGITS = 5  # losses to 5 decimals keep the files small and far finer than the spread
_NUMBER_LIST = re.compile(r"\[\s*([-+0-9.eE,\s]+?)\s*\]")


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(
    histories: Sequence[Any],
    *,
    recipe: str,
    seeds: Sequence[int],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The reference JSON (as a dict) of ``histories``, one per seed, same steps.

    Args:
        histories: :class:`~lm_course.training.History` objects (or their dicts).
        recipe: the recipe's name.
        seeds: the seed of each history.
        config: the recipe's config.
    """
    records = [history_dict(history) for history in histories]
    if not records or len(records) != len(seeds):
        raise ValueError(
            f"need one history per seed, got {len(records)} histories for "
            f"{len(seeds)} seeds"
        )
    curves: dict[str, dict[str, list[float]]] = {}
    final: dict[str, dict[str, Any]] = {}
    for metric, steps_key in (("train_loss", "steps"), ("val_loss", "eval_steps")):
        steps = list(records[0].get(steps_key) or [])
        if not steps:
            continue
        if any(list(r.get(steps_key) or []) != steps for r in records):
            raise ValueError(
                f"the runs logged {metric} at different steps; a reference needs the "
                "same recipe with different seeds"
            )
        columns = list(zip(*(r[metric] for r in records), strict=True))
        curves[metric] = {
            "steps": steps,
            "mean": [round(statistics.fmean(c), DIGITS) for c in columns],
            "std": [round(_std(c), DIGITS) for c in columns],
        }
        last = [float(v) for v in columns[-1]]
        final[metric] = {
            "values": [round(v, DIGITS) for v in last],
            "mean": round(statistics.fmean(last), DIGITS),
            "std": round(_std(last), DIGITS),
        }
    return {
        "format": FORMAT,
        "recipe": recipe,
        "seeds": list(seeds),
        "config": dict(config),
        "recorded_on": {
            "device": records[0].get("device", ""),
            "torch": torch.__version__,
        },
        "curves": curves,
        "final": final,
    }


def default_path(recipe: str) -> Path:
    """Where the package keeps the reference of ``recipe``."""
    return Path(__file__).resolve().parent / f"{recipe}.json"


def record_reference(
    recipe: str,
    seeds: int | Sequence[int] = 3,
    *,
    device: str = "cpu",
    out: str | Path | None = None,
) -> Path:
    """Train ``recipe`` with each seed (through the cache) and write its reference.

    Args:
        recipe: a registered recipe name.
        seeds: how many seeds (``0 .. n-1``), or the seeds themselves.
        device: where to train; references for the book are recorded on the CPU.
        out: the JSON file to write; by default the package's reference of ``recipe``.

    Returns:
        The path written.
    """
    from .. import zoo  # training is needed only here, not to read a reference

    if isinstance(seeds, int):
        seeds = list(range(check_int("seeds", seeds, minimum=1)))
    seeds = [check_int("seed", seed, minimum=0) for seed in seeds]
    histories = [
        zoo.load(recipe, device=device, seed=seed)[1].history for seed in seeds
    ]
    config = zoo.get_recipe(recipe).config
    data = summarise(histories, recipe=recipe, seeds=seeds, config=config)
    path = Path(out) if out is not None else default_path(recipe)
    path.write_text(to_json(data), encoding="utf-8")
    return path


def to_json(data: Mapping[str, Any]) -> str:
    """The reference as JSON text, each list of numbers on one line (short diffs)."""
    text = json.dumps(data, indent=1)
    return _NUMBER_LIST.sub(lambda m: f"[{' '.join(m[1].split())}]", text) + "\n"
