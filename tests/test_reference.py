"""Reference curves: the summary over seeds, shipped files, the plot, the command."""

from __future__ import annotations

import json
import math
import statistics
from fnmatch import fnmatch
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from zoo_helpers import LOG_ENV, MICRO, trainings

from lm_course import zoo
from lm_course.plotting import plot_against_reference
from lm_course.reference import (
    BAND,
    Reference,
    final_value,
    load_reference,
    reference_names,
)
from lm_course.reference import __main__ as command
from lm_course.reference.record import record_reference, summarise, to_json
from lm_course.zoo import recipe as recipe_module

ROOT = Path(__file__).resolve().parents[1]


def _history(train: list[float], val: list[float]) -> dict:
    return {
        "steps": [10 * (i + 1) for i in range(len(train))],
        "train_loss": train,
        "eval_steps": [20 * (i + 1) for i in range(len(val))],
        "val_loss": val,
        "device": "cpu (1 threads)",
    }


RUNS = [
    _history([3.0, 2.5, 2.0, 1.9], [2.6, 2.1]),
    _history([3.2, 2.4, 2.2, 2.0], [2.7, 2.2]),
    _history([3.1, 2.6, 2.1, 1.8], [2.5, 2.0]),
]


def _summary() -> dict:
    return summarise(RUNS, recipe="made-up", seeds=[0, 1, 2], config={"lr": 1.0})


def test_summary_holds_mean_and_sample_sd_per_step_and_per_seed_finals() -> None:
    data = _summary()
    val = data["curves"]["val_loss"]
    assert val["steps"] == [20, 40]
    assert val["mean"] == [pytest.approx(2.6), pytest.approx(2.1)]
    assert val["std"][1] == pytest.approx(statistics.stdev([2.1, 2.2, 2.0]), abs=1e-5)
    assert data["final"]["val_loss"]["values"] == [2.1, 2.2, 2.0]
    assert data["final"]["train_loss"]["mean"] == pytest.approx(1.9)
    assert data["seeds"] == [0, 1, 2] and data["config"] == {"lr": 1.0}
    assert json.loads(to_json(data)) == data  # one line per list, same JSON
    assert '"steps": [20, 40]' in to_json(data)


def test_summary_refuses_runs_that_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="different steps"):
        summarise(
            [RUNS[0], _history([3.0, 2.0], [2.0])], recipe="r", seeds=[0, 1], config={}
        )
    with pytest.raises(ValueError, match="one history per seed"):
        summarise(RUNS, recipe="r", seeds=[0, 1], config={})


def test_within_and_verdict_use_the_band() -> None:
    ref = Reference.from_dict(_summary())
    mean, std = ref.expected()
    assert mean == pytest.approx(2.1) and std == pytest.approx(0.1)
    assert ref.within(mean + 0.9 * BAND * std)
    assert not ref.within(mean + 1.1 * BAND * std)
    assert ref.verdict(RUNS[0]) == (
        "final validation loss 2.100: within the expected 2.100 ± 0.200 "
        "(mean ± 2 sd over 3 seeds)"
    )
    assert "outside" in ref.verdict(_history([3.0], [2.9]))
    with pytest.raises(ValueError, match="no 'bleu'"):
        ref.expected("bleu")
    with pytest.raises(ValueError, match="no finite 'val_loss'"):
        final_value(_history([3.0], [math.nan]))
    with pytest.raises(ValueError, match="format"):
        Reference.from_dict({**_summary(), "format": 99})


def test_shipped_references_load_and_match_their_recipes() -> None:
    assert "tiny-char-gpt" in reference_names()
    for name in reference_names():
        ref = load_reference(name)
        recipe = zoo.get_recipe(name)
        # A reference recorded for another config describes another run.
        assert ref.config == json.loads(json.dumps(dict(recipe.config))), name
        assert len(ref.seeds) >= 3
        for curve in ref.curves.values():
            assert len(curve.steps) == len(curve.mean) == len(curve.std)
        val = ref.final["val_loss"]
        assert val.mean == pytest.approx(statistics.fmean(val.values), abs=1e-4)
    tiny = load_reference("tiny-char-gpt")
    train = zoo.get_recipe("tiny-char-gpt").config["train"]
    assert tiny.curves["val_loss"].steps[-1] == train["max_steps"]
    with pytest.raises(ValueError, match="no reference for 'nope'.*tiny-char-gpt"):
        load_reference("nope")


def test_reference_files_are_declared_as_package_data() -> None:
    """Without this line in pyproject.toml an installed course has no references."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = project["tool"]["setuptools"].get("package-data", {})
    patterns = package_data.get("lm_course.reference", [])
    for name in reference_names():
        assert any(fnmatch(f"{name}.json", p) for p in patterns), package_data


def test_plot_draws_the_band_the_mean_and_the_readers_curves() -> None:
    ref = Reference.from_dict(_summary())
    ax = plot_against_reference(RUNS[0], ref)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == [
        "reference training (mean ± 2 sd, 3 seeds)",
        "your training",
        "reference validation (mean ± 2 sd, 3 seeds)",
        "your validation",
        "expected final 2.100 ± 0.200",
    ]
    assert len(ax.collections) >= 2  # two shaded bands (plus the error bar)
    assert "made-up" in ax.get_title()
    plt.close(ax.figure)
    # A recipe name loads the shipped reference.
    ax = plot_against_reference(RUNS[0], "tiny-char-gpt", title="mine")
    assert ax.get_title() == "mine"
    plt.close(ax.figure)


def test_record_reference_trains_each_seed_once_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LM_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LM_COURSE_MODELS", raising=False)
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "log"))
    recipe_module.recipe_names()
    monkeypatch.setattr(recipe_module, "_REGISTRY", dict(recipe_module._REGISTRY))
    zoo.register(MICRO)
    out = tmp_path / "micro.json"
    path = record_reference("micro", 2, device="cpu", out=out)
    ref = Reference.from_dict(json.loads(path.read_text(encoding="utf-8")))
    assert ref.seeds == [0, 1] and ref.config == MICRO.config
    values = [zoo.load("micro", device="cpu", seed=s)[1].metrics for s in (0, 1)]
    assert ref.final["val_loss"].values == [round(v["val_loss"], 5) for v in values]
    assert len(trainings(tmp_path / "log")) == 2  # the loads above hit the cache
    # The command writes the same file again, training nothing.
    assert command.main(["micro", "--seeds", "2", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(
        to_json(
            summarise(
                [zoo.load("micro", device="cpu", seed=s)[1].history for s in (0, 1)],
                recipe="micro",
                seeds=[0, 1],
                config=MICRO.config,
            )
        )
    )
    assert f"wrote {out}" in capsys.readouterr().out
    assert len(trainings(tmp_path / "log")) == 2
