"""Chapter 5's recipes: the vocabulary and the two pretrained trunks chapter 6 loads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from lm_course import zoo
from lm_course.models.encoder import TransformerEncoder
from lm_course.models.gpt import GPT
from lm_course.pretraining import Vocab
from lm_course.zoo.recipes import ch05


def test_cpu_and_gpu_recipes_and_the_device_choice() -> None:
    names = zoo.recipe_names()
    for name in (
        "ch05-vocab",
        "ch05-encoder",
        "ch05-causal",
        "ch05-encoder-gpu",
        "ch05-causal-gpu",
    ):
        assert name in names
    assert ch05.recipe_for("encoder", "cpu").name == "ch05-encoder"
    assert ch05.recipe_for("causal", torch.device("cuda")).name == "ch05-causal-gpu"
    for recipe in (*ch05.ENCODER.values(), *ch05.CAUSAL.values()):
        assert recipe.needs == ("ch05-vocab",)
    with pytest.raises(ValueError, match="kind"):
        ch05.recipe_for("seq2seq", "cpu")


def test_built_models_fit_the_vocabulary_and_its_padding() -> None:
    encoder = ch05.ENCODER["cpu"].build(dict(ch05.ENCODER["cpu"].config))
    gpt = ch05.CAUSAL["cpu"].build(dict(ch05.CAUSAL["cpu"].config))
    assert isinstance(encoder, TransformerEncoder) and isinstance(gpt, GPT)
    assert encoder.config.vocab_size == gpt.config.vocab_size == ch05.VOCAB_PIECES + 2
    assert encoder.config.pad_id == ch05.VOCAB_PIECES  # the id after the last piece


def test_pretrained_trains_once_then_loads_vocab_and_trunk(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    monkeypatch.setenv("LM_COURSE_CACHE", str(tmp_path))
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    recipe = ch05.CAUSAL["cpu"]
    config = dict(recipe.config)
    config["model"] = {**config["model"], "n_layer": 1, "d_model": 16, "n_head": 2}
    config["train"] = {
        **config["train"],
        "max_steps": 3,
        "warmup_steps": 1,
        "eval_every": 0,
    }
    tiny = dataclasses.replace(recipe, name="ch05-causal-test", config=config)
    monkeypatch.setitem(ch05.CAUSAL, "cpu", zoo.register(tiny, replace=True))
    vocab, model, record = ch05.pretrained("causal", "cpu")
    assert isinstance(vocab, Vocab) and len(vocab) == model.config.vocab_size
    assert record.history.steps[-1] == 3 and record.recipe == "ch05-causal-test"
    again = ch05.pretrained("causal", "cpu")
    for a, b in zip(model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    ids, keep = vocab.batch(["a gripping , funny film ."], max_len=16)
    assert model.encode(ids).shape == (1, ids.shape[1], 16)
    # The vocabulary comes back from the cache byte for byte.
    assert ch05.load_vocab("cpu").to_bytes() == vocab.to_bytes()
