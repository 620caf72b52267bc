"""Chapter 8's recipes: the student three ways, the size sweep, equal-time steps."""

from __future__ import annotations

import pytest
import torch

from lm_course import zoo
from lm_course.compression import DistillationLoss
from lm_course.zoo.recipes import ch08


def test_every_recipe_has_a_gpu_twin_and_recipe_for_picks_it() -> None:
    names = zoo.recipe_names()
    for name in ch08.CONFIGS:
        assert name in names and f"{name}-gpu" in names
    assert ch08.recipe_for("student-kd", "cpu") == "ch08-student-kd"
    assert ch08.recipe_for("size-64", torch.device("cuda")) == "ch08-size-64-gpu"
    with pytest.raises(ValueError, match="unknown chapter 8 recipe 'size-7'"):
        ch08.recipe_for("size-7", "cpu")


def test_the_students_differ_only_where_they_should() -> None:
    alone = zoo.get_recipe("ch08-student").config
    kd = zoo.get_recipe("ch08-student-kd").config
    muon = zoo.get_recipe("ch08-student-muon").config
    assert kd["model"] == alone["model"] == muon["model"]
    assert kd["train"] == alone["train"]
    assert zoo.get_recipe("ch08-student-kd").needs == ("ch04-gpt",)
    assert zoo.get_recipe("ch08-student-kd-gpu").config["teacher"] == "ch04-gpt-gpu"
    differs = {k for k in muon["train"] if muon["train"][k] != alone["train"].get(k)}
    assert differs == {"optimizer", "muon_lr", "max_steps", "eval_every"}


def test_equal_time_means_steps_times_step_time() -> None:
    times = ch08.STEP_TIMES
    alone = zoo.get_recipe("ch08-student").config["train"]["max_steps"]
    muon = zoo.get_recipe("ch08-student-muon").config["train"]["max_steps"]
    seconds = (alone * times["student_ms"], muon * times["student_muon_ms"])
    assert seconds[1] == pytest.approx(seconds[0], rel=0.01)
    for width in ch08.SIZES:
        steps = zoo.get_recipe(f"ch08-size-{width}").config["train"]["max_steps"]
        spent = steps * times["width_ms"][width] / 1000
        assert spent == pytest.approx(ch08.SWEEP_BUDGET_S, rel=0.05)


def test_the_sweep_models_grow_with_width() -> None:
    params = [
        sum(
            p.numel()
            for p in ch08.build(zoo.get_recipe(f"ch08-size-{w}").config).parameters()
        )
        for w in ch08.SIZES
    ]
    assert params == sorted(params) and params[-1] > 20 * params[0]


def test_fit_distils_from_the_teacher_it_names(
    shared_data, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_CACHE", str(tmp_path))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    teachers = []
    original = DistillationLoss.__init__

    def spy(self, teacher, *args):
        teachers.append(teacher)
        original(self, teacher, *args)

    monkeypatch.setattr(DistillationLoss, "__init__", spy)
    config = dict(zoo.get_recipe("ch08-student-kd").config)
    # The tiny recipe (context 32) stands in for chapter 4's model: seconds to train.
    config["teacher"] = "tiny-char-gpt"
    config["model"] = {**config["model"], "block_size": 32}
    short = {"max_steps": 2, "warmup_steps": 1, "eval_every": 2, "eval_batches": 1}
    config["train"] = {**config["train"], **short}
    torch.manual_seed(0)
    model = ch08.build(config)
    history, metrics = ch08.fit(model, config, seed=0, device=torch.device("cpu"))
    assert history.steps[-1] == 2 and len(teachers) == 1
    assert teachers[0].config.d_model == 32  # the tiny teacher, from the cache
    assert metrics["val_loss"] == history.val_loss[-1] < 4.5
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())
