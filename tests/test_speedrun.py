"""The speedrun challenge: recipe files, the hash, the full-split score, the command's
one JSON line."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from lm_course import cli, speedrun
from lm_course.models.gpt import GPT, GPTConfig
from lm_course.presets import get_preset

pytestmark = pytest.mark.usefixtures("shared_data")

TINY = {
    "model": {"block_size": 16, "n_layer": 1, "n_head": 2, "d_model": 16},
    "batch_size": 8,
    "train": {"lr": 3e-3, "warmup_steps": 2, "optimizer": "muon"},
}


def _recipe(tmp_path: Path, data: object, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _parser() -> argparse.ArgumentParser:
    return cli.parser()  # the command line readers use


def test_a_recipe_file_becomes_a_preset_and_its_hash_names_it(tmp_path: Path) -> None:
    preset = speedrun.load_recipe(_recipe(tmp_path, TINY))
    assert preset.name == "mine" and preset.batch_size == 8
    assert preset.train["optimizer"] == "muon"
    same = speedrun.load_recipe(_recipe(tmp_path, TINY, "renamed"))
    assert speedrun.recipe_hash(same) == speedrun.recipe_hash(preset)
    other = json.loads(json.dumps(TINY))
    other["train"]["lr"] = 1e-3
    changed = speedrun.load_recipe(_recipe(tmp_path, other))
    assert speedrun.recipe_hash(changed) != speedrun.recipe_hash(preset)
    assert len(speedrun.recipe_hash(preset)) == 16


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**TINY, "train": {"max_steps": 10}}, r"\['max_steps'\] are not the recipe"),
        ({**TINY, "train": {"seed": 3}}, r"\['seed'\] are not the recipe"),
        ({**TINY, "model": {"vocab_size": 65, "block_size": 8}}, "vocab_size"),
        ({**TINY, "model": {"n_layer": 2}}, "needs a block_size"),
        ({**TINY, "extra": 1}, r"unknown keys \['extra'\]"),
        ({**TINY, "batch_size": 0}, "batch_size must be an integer >= 1"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_recipes_that_break_the_rules_are_refused(
    tmp_path: Path, data: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        speedrun.load_recipe(_recipe(tmp_path, data))


def test_the_score_reads_every_window_of_the_split_once() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=8, block_size=5, n_layer=1, n_head=1, d_model=8))
    ids = torch.randint(0, 8, (23,))  # 22 predictions: 4 windows of 5, 2 left over
    loss = speedrun.validation_loss(model, ids, rows=3)  # rows do not divide 4
    x, y = ids[:20].view(4, 5), ids[1:21].view(4, 5)
    with torch.no_grad():
        expected = model(x, y)[1].item()
    assert loss == pytest.approx(expected, rel=1e-6)
    assert model.training  # the mode is given back


def test_the_command_prints_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _recipe(tmp_path, TINY)
    args = _parser().parse_args(
        ["speedrun", "--recipe", str(path), "--budget-s", "1.5", "--threads", "1"]
    )
    args.func(args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["challenge"] == speedrun.CHALLENGE and entry["recipe"] == "mine"
    assert entry["recipe_sha256"] == speedrun.recipe_hash(speedrun.load_recipe(path))
    assert entry["steps"] > 0 and entry["budget_s"] == 1.5
    assert 1.5 <= entry["train_s"] < 10
    assert 0 < entry["val_loss"] < math.log(65) + 0.5
    for key in ("machine", "torch", "device", "threads", "date", "parameters"):
        assert key in entry


def test_the_default_is_the_cpu_preset() -> None:
    args = _parser().parse_args(["speedrun"])
    assert args.preset == "cpu" and args.recipe is None
    assert args.budget_s == speedrun.DEFAULT_BUDGET_S
    assert speedrun.recipe_hash(get_preset("cpu"))


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--threads", "0"], "threads"),
        (["--budget-s", "0"], "budget_s"),
        (["--recipe", "missing.json"], "missing.json"),
    ],
)
def test_bad_arguments_print_one_error_line(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["speedrun", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0]


def test_a_recipe_and_a_preset_together_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Either may be given, not both: a file silently winning over ``--preset`` would
    score a recipe the reader did not ask for. argparse refuses it with its usage."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["speedrun", "--preset", "tiny", "--recipe", "r.json"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert "--recipe: not allowed with argument --preset" in err[-1]
