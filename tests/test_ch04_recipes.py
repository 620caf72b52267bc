"""Chapter 4's zoo recipes: registered, buildable, matched in size, matched in time."""

from __future__ import annotations

import pytest
import torch

from lm_course import zoo
from lm_course.training import TrainConfig
from lm_course.zoo.recipes import ch04

NAMES = ["ch04-gpt", "ch04-gpt-gpu", "ch04-lstm", "ch04-lstm-gpu"]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_recipes_are_registered_with_their_data_and_code() -> None:
    names = zoo.recipe_names()
    for name in NAMES:
        assert name in names
        recipe = zoo.get_recipe(name)
        assert recipe.data == ("tinyshakespeare/input.txt",)
        assert "lm_course.models.gpt" in recipe.code
        assert "lm_course.models.lstm" in recipe.code


@pytest.mark.parametrize("name", NAMES)
def test_configs_build_and_their_training_settings_are_valid(name) -> None:
    recipe = zoo.get_recipe(name)
    model = recipe.build(dict(recipe.config))
    assert isinstance(model, torch.nn.Module)
    settings = TrainConfig(**recipe.config["train"], seed=0, device="cpu")
    assert settings.max_steps >= 500


@pytest.mark.parametrize(("gpt", "lstm"), [NAMES[0::2], NAMES[1::2]])
def test_the_lstm_has_the_gpts_parameter_count_within_one_percent(gpt, lstm) -> None:
    sizes = [
        _params(zoo.get_recipe(name).build(dict(zoo.get_recipe(name).config)))
        for name in (gpt, lstm)
    ]
    assert abs(sizes[1] - sizes[0]) / sizes[0] < 0.01, sizes


def test_the_lstm_trains_for_the_gpts_wall_clock_time() -> None:
    for kind, (gpt, lstm) in {"cpu": NAMES[0::2], "cuda": NAMES[1::2]}.items():
        times = ch04.STEP_TIMES[kind]
        gpt_steps = zoo.get_recipe(gpt).config["train"]["max_steps"]
        lstm_steps = zoo.get_recipe(lstm).config["train"]["max_steps"]
        assert lstm_steps == ch04.lstm_steps(kind)
        gpt_seconds = gpt_steps * times["gpt_ms"]
        lstm_seconds = lstm_steps * times["lstm_ms"]
        assert abs(gpt_seconds - lstm_seconds) <= times["lstm_ms"]  # one step at most
        assert times["machine"]


def test_both_gpt_recipes_keep_the_feed_forward_ratio_of_article_002() -> None:
    for name in NAMES[:2]:
        model = zoo.get_recipe(name).config["model"]
        assert model["d_ff"] == 4 * model["d_model"]  # 2048 / 512 in article 002 §4.3


def test_recipe_for_picks_by_device() -> None:
    assert ch04.recipe_for("gpt", "cpu") == "ch04-gpt"
    assert ch04.recipe_for("lstm", torch.device("cpu")) == "ch04-lstm"
    assert ch04.recipe_for("gpt", "cuda") == "ch04-gpt-gpu"
    assert ch04.recipe_for("lstm", "cuda:0") == "ch04-lstm-gpu"
    with pytest.raises(ValueError, match="'gpt' or 'lstm'"):
        ch04.recipe_for("rnn", "cpu")
    assert set(ch04.TARGETS) == {"ch04-gpt", "ch04-gpt-gpu"}


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_fit_trains_a_shrunk_recipe_and_reports_its_metrics(kind) -> None:
    recipe = zoo.get_recipe(f"ch04-{kind}")
    config = {**recipe.config, "batch_size": 2}
    config["train"] = {
        **config["train"],
        "max_steps": 3,
        "eval_every": 3,
        "eval_batches": 1,
        "log_every": 1,
        "progress": False,
        "warmup_steps": 1,
    }
    if kind == "gpt":
        config["model"] = {**config["model"], "n_layer": 1, "d_model": 16, "d_ff": 32}
    else:
        config["model"] = {**config["model"], "d_hidden": 16}
    torch.manual_seed(0)
    model = recipe.build(config)
    history, metrics = ch04.fit(model, config, seed=0, device=torch.device("cpu"))
    assert history.steps[-1] == 3
    assert metrics["val_loss"] == history.val_loss[-1]
    assert metrics["parameters"] == _params(model)
    wrong = {**config, "model": {**config["model"], "vocab_size": 64}}
    with pytest.raises(ValueError, match="65 distinct characters"):
        ch04.fit(recipe.build(wrong), wrong, seed=0, device=torch.device("cpu"))
