"""The benchmark command runs end to end and prints the keys the README documents."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lm_course import bench
from lm_course.bench import table
from lm_course.cli import main
from lm_course.presets import cpu_precision

KEYS = {
    "device",
    "train_tokens_per_s",
    "mfu",
    "budget_s",
    "val_loss_at_budget",
    "kv_cache_speedup",
}


def test_quick_bench_prints_one_json_object(shared_data: Path) -> None:
    env = {**os.environ, "LM_COURSE_DATA": str(shared_data), "LM_COURSE_PROGRESS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "lm_course", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record.keys() >= KEYS
    assert record["quick"] is True and record["device"].startswith("cpu")
    assert record["train_tokens_per_s"] > 0 and 0 < record["mfu"] < 1
    assert record["kv_cache_speedup"] > 1  # the cache must at least help
    assert record["recipe_seconds"] <= 1.25 * record["budget_s"]
    rendered = table(record)
    assert "| training tokens/s, reference config |" in rendered
    # The mixed-precision reference run exists exactly where bfloat16 is native.
    mixed = record["bf16_tokens_per_s"]
    assert (mixed is not None) == (cpu_precision() == "bfloat16")
    if mixed is not None:
        assert mixed > 0 and math.isfinite(record["bf16_reference_val_loss"])
        assert "bfloat16 autocast |" in rendered


def test_the_reference_run_trains_in_the_precision_asked(
    shared_data: Path, monkeypatch
) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    seen: list[str] = []
    real_train = bench.train

    def spy(model, batches, config):
        seen.append(config.precision)
        return real_train(model, batches, config)

    monkeypatch.setattr(bench, "train", spy)
    full = bench.reference_run(torch.device("cpu"), steps=2)
    mixed = bench.reference_run(torch.device("cpu"), steps=2, precision="bfloat16")
    assert seen == ["auto", "bfloat16"]
    # Same start, same batches: two steps apart only by bfloat16's rounding.
    assert abs(full["val_loss"] - mixed["val_loss"]) < 0.05


def test_budget_is_the_reference_time_unless_budget_s_is_given(monkeypatch) -> None:
    asked: list[float] = []

    def fake_recipe(device: torch.device, budget_s: float) -> dict:
        asked.append(budget_s)
        return {"preset": "cpu", "steps": 3, "seconds": budget_s, "val_loss": 2.0}

    reference = {"seconds": 12.5, "tokens_per_s": 100.0, "val_loss": 2.5}
    monkeypatch.setattr(
        bench,
        "reference_run",
        lambda d, s, precision="auto": {**reference, "flops_per_token": 1.0},
    )
    monkeypatch.setattr(bench, "recipe_run", fake_recipe)
    monkeypatch.setattr(bench, "matmul_flops", lambda d: 1e3)
    speed = {"with_cache_s": 1.0, "without_cache_s": 6.0, "speedup": 6.0}
    monkeypatch.setattr(bench, "kv_cache_speedup", lambda d: speed)
    default = bench.run(quick=True, device="cpu")
    given = bench.run(quick=True, device="cpu", budget_s=3.0)
    assert asked == [12.5, 3.0]
    assert default["budget_s"] == 12.5 and given["budget_s"] == 3.0
    assert default.keys() == given.keys() and given.keys() >= KEYS
    assert "given by --budget-s" in table(given) and "200 reference" in table(default)


def test_the_recipe_trains_in_a_tiny_budget(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    result = bench.recipe_run(torch.device("cpu"), budget_s=2.0)
    assert result["preset"] == "cpu" and result["steps"] >= 1
    # The trainer's clock is tested exactly in test_time_budget.py; here only that the
    # run ends. How close it comes to its budget is the benchmark's to measure (a
    # loaded machine stretches the start-up and the evaluation that come on top).
    assert result["seconds"] < 2.0 + 20.0
    assert math.isfinite(result["val_loss"])


def test_the_reference_run_is_seeded(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    first = bench.reference_run(torch.device("cpu"), steps=2)
    torch.rand(3)
    again = bench.reference_run(torch.device("cpu"), steps=2)
    assert first["val_loss"] == again["val_loss"]


def test_budget_s_must_be_a_positive_number(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--budget-s", "0"])
    assert "--budget-s: must be a positive number, got 0" in capsys.readouterr().err
