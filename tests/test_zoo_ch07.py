"""Chapter 7's recipes: one small model that differs in one choice, per device."""

import os

import pytest
import torch

from lm_course import zoo
from lm_course.attention.grouped import GroupedQueryAttention
from lm_course.zoo.recipes import ch07


def test_every_variant_has_a_cpu_and_a_gpu_recipe():
    names = zoo.recipe_names()
    for variant in ch07.VARIANTS:
        assert f"ch07-{variant}" in names and f"ch07-{variant}-gpu" in names
    assert ch07.recipe_for("pos-rope", "cpu") == "ch07-pos-rope"
    assert ch07.recipe_for("mqa", torch.device("cuda")) == "ch07-mqa-gpu"
    with pytest.raises(ValueError, match="unknown variant 'pos-xyz'"):
        ch07.recipe_for("pos-xyz", "cpu")


@pytest.mark.parametrize("size", ["cpu", "gpu"])
def test_variants_differ_from_the_rope_baseline_in_one_field(size):
    suffix = "-gpu" if size == "gpu" else ""
    base = zoo.get_recipe(f"ch07-pos-rope{suffix}").config
    for variant, change in ch07.VARIANTS.items():
        config = zoo.get_recipe(f"ch07-{variant}{suffix}").config
        assert {k: v for k, v in config.items() if k != "model"} == {
            k: v for k, v in base.items() if k != "model"
        }
        differs = {
            k for k in config["model"] if config["model"][k] != base["model"].get(k)
        } | (set(base["model"]) - set(config["model"]))
        assert differs <= set(change), (variant, differs)


def test_the_models_build_with_the_heads_they_promise():
    heads = {"pos-rope": 4, "gqa": 2, "mqa": 1}
    for variant, n_kv in heads.items():
        model = ch07.build(zoo.get_recipe(f"ch07-{variant}").config)
        assert model.make_cache(1).k.size(2) == n_kv
        grouped = isinstance(model.blocks[0].attn, GroupedQueryAttention)
        assert grouped == (n_kv != 4)


def test_fit_trains_a_variant_for_a_few_steps(shared_data, monkeypatch):
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    config = dict(zoo.get_recipe("ch07-mqa").config)
    short = {"max_steps": 2, "warmup_steps": 1, "eval_batches": 1}
    config["train"] = {**config["train"], **short}
    torch.manual_seed(0)
    model = ch07.build(config)
    history, metrics = ch07.fit(model, config, seed=0, device=torch.device("cpu"))
    assert history.steps[-1] == 2
    assert metrics["val_loss"] == history.val_loss[-1] < 4.5
    assert os.environ["LM_COURSE_PROGRESS"] == "0"
