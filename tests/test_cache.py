"""The model cache: keys, concurrency, damaged entries, ready models, warm = cold."""

from __future__ import annotations

import dataclasses
import json
import linecache
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_helpers import LOG_ENV, MICRO, trainings

from lm_course import zoo
from lm_course.reference import load_reference
from lm_course.training import seed_everything
from lm_course.zoo import fingerprint, loader
from lm_course.zoo import recipe as recipe_module
from lm_course.zoo.cache import ENTRY_FILE, WEIGHTS_FILE

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache in ``tmp_path``; returns its models folder."""
    monkeypatch.setenv("LM_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LM_COURSE_MODELS", raising=False)
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "trainings.log"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of the recipe registry that the test may change freely."""
    recipe_module.recipe_names()  # discover the course's recipes first
    copy = dict(recipe_module._REGISTRY)
    monkeypatch.setattr(recipe_module, "_REGISTRY", copy)
    return copy


def _log(tmp_path: Path) -> list[str]:
    return trainings(tmp_path / "trainings.log")


def _key(recipe: zoo.Recipe, seed: int | None = None, device: str = "cpu") -> str:
    seed = recipe.seed if seed is None else seed
    return zoo.entry_key(zoo.key_material(recipe, seed, device))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- keys -----------------------------------------------------------------------------


def test_key_changes_with_config_seed_data_device_and_needs(registry: dict) -> None:
    base = _key(MICRO)
    assert base == _key(MICRO), "the key must be a pure function of the recipe"
    changed = {
        "config": _key(dataclasses.replace(MICRO, config={"dim": 16, "steps": 10})),
        "seed": _key(MICRO, seed=1),
        "data": _key(dataclasses.replace(MICRO, data=("tinyshakespeare/input.txt",))),
        "device": _key(MICRO, device="cuda"),
        "code": _key(dataclasses.replace(MICRO, code=("lm_course.checks",))),
    }
    assert len({base, *changed.values()}) == 1 + len(changed), changed
    # A recipe that starts from another one changes when that one does.
    parent = zoo.register(dataclasses.replace(MICRO, name="micro-parent"))
    child = dataclasses.replace(MICRO, name="micro-child", needs=("micro-parent",))
    before = _key(child)
    zoo.register(
        dataclasses.replace(parent, config={"dim": 4, "steps": 10}), replace=True
    )
    assert _key(child) != before


def test_needs_in_a_circle_is_an_error(registry: dict) -> None:
    zoo.register(dataclasses.replace(MICRO, name="micro-a", needs=("micro-b",)))
    zoo.register(dataclasses.replace(MICRO, name="micro-b", needs=("micro-a",)))
    with pytest.raises(ValueError, match="circle"):
        _key(zoo.get_recipe("micro-a"))


def test_code_key_follows_the_code_not_its_comments_or_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "recipe_code_probe.py"
    module.write_text('"""Doc."""\n\ndef f(x):\n    return x + 1\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = dataclasses.replace(MICRO, code=("recipe_code_probe",))
    first = _key(recipe)
    # Comments, docstrings, blank lines, formatting and line endings: same code.
    module.write_text(
        '"""Another doc."""\r\n# a comment\r\n\r\ndef f( x ):\r\n'
        '    """Adds one."""\r\n    return (x + 1)  # why\r\n',
        encoding="utf-8",
    )
    os.utime(module, ns=(1, 1))  # a new mtime, so no digest is reused
    assert _key(recipe) == first
    module.write_text("def f(x):\n    return x + 2\n", encoding="utf-8")
    os.utime(module, ns=(2, 2))
    assert _key(recipe) != first


def test_a_recipe_typed_into_a_notebook_is_keyed_by_its_source() -> None:
    """Functions of a notebook cell live in ``__main__``, which has no file."""

    def cell(source: str) -> dict:
        name = f"<ipython-input-{abs(hash(source))}>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        namespace = {"__name__": "__main__"}
        exec(compile(source, name, "exec"), namespace)
        return namespace

    first = cell("def build(config):\n    return config['width'] + 1\n")["build"]
    same = cell("def build(config):  # again\n    return config['width'] + 1\n")
    other = cell("def build(config):\n    return config['width'] + 2\n")["build"]
    label, digest = fingerprint._function_digest(first)
    assert label == "__main__.build"
    assert fingerprint._function_digest(same["build"]) == (label, digest)
    assert fingerprint._function_digest(other)[1] != digest


def test_a_package_in_code_stands_for_all_its_modules() -> None:
    files = fingerprint._module_files("lm_course.training")
    assert {"lm_course.training", "lm_course.training.trainer"} <= set(files)


def test_recipes_are_checked_and_registered_once(registry: dict) -> None:
    assert "tiny-char-gpt" in zoo.recipe_names()
    assert zoo.get_recipe("tiny-char-gpt").data == ("tinyshakespeare/input.txt",)
    with pytest.raises(ValueError, match="unknown recipe 'nope'.*tiny-char-gpt"):
        zoo.get_recipe("nope")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register(dataclasses.replace(zoo.get_recipe("tiny-char-gpt")))
    with pytest.raises(ValueError, match="Recipe.name"):
        dataclasses.replace(MICRO, name="../up")
    with pytest.raises(TypeError, match="JSON"):
        dataclasses.replace(MICRO, config={"dim": object()})
    with pytest.raises(ValueError, match="no-such/file.txt"):
        dataclasses.replace(MICRO, data=("no-such/file.txt",))
    with pytest.raises(TypeError, match="Recipe.seed"):
        dataclasses.replace(MICRO, seed="0")


# --- entries: new, reused, listed, cleared --------------------------------------------


def test_a_changed_recipe_trains_a_new_entry_and_an_unchanged_one_does_not(
    cache: Path, tmp_path: Path
) -> None:
    _, first = zoo.load(MICRO, device="cpu")
    _, again = zoo.load(MICRO, device="cpu")
    assert len(_log(tmp_path)) == 1 and again == first
    wider = dataclasses.replace(MICRO, config={"dim": 12, "steps": 10})
    model, other = zoo.load(wider, device="cpu")
    zoo.load(MICRO, device="cpu", seed=3)
    assert len(_log(tmp_path)) == 3
    assert other.key != first.key and model.embed.embedding_dim == 12
    listed = zoo.list_entries()
    assert sorted((e.recipe, e.seed) for e in listed) == [
        ("micro", 0),
        ("micro", 0),
        ("micro", 3),
    ]
    assert all(e.size_bytes > 0 and e.metrics["note"] == "micro" for e in listed)
    assert zoo.clear("other") == 0
    assert zoo.clear("micro") == 3 and zoo.list_entries() == []


def test_fit_must_return_a_history_and_json_metrics(cache: Path) -> None:
    def no_history(model, config, seed, device):
        return {"val_loss": 1.0}

    def bad_metrics(model, config, seed, device):
        return MICRO.fit(model, config, seed, device)[0], {"model": model}

    with pytest.raises(TypeError, match="must return a History"):
        zoo.load(dataclasses.replace(MICRO, fit=no_history), device="cpu")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        zoo.load(dataclasses.replace(MICRO, fit=bad_metrics), device="cpu")
    assert zoo.list_entries() == []


def test_entry_holds_safetensors_and_json_only(cache: Path) -> None:
    _, record = zoo.load(MICRO, device="cpu")
    assert sorted(p.name for p in record.path.iterdir()) == [ENTRY_FILE, WEIGHTS_FILE]
    stored = json.loads((record.path / ENTRY_FILE).read_text(encoding="utf-8"))
    assert stored["key"] == record.key and stored["material"]["recipe"] == "micro"
    assert stored["metrics"] == record.metrics
    assert record.path.parent == cache and record.path.name.startswith("micro-seed0-")
    assert repr(record) == "Record('micro', seed=0, steps=10)"


# --- damaged entries ------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_key(path: Path) -> None:
    contents = json.loads(path.read_text(encoding="utf-8"))
    contents["key"] = "0" * 64
    path.write_text(json.dumps(contents), encoding="utf-8")


DAMAGE = {
    "truncated weights": (WEIGHTS_FILE, _truncate, "sha256"),
    "missing weights": (WEIGHTS_FILE, Path.unlink, "missing"),
    "bad JSON": (ENTRY_FILE, lambda p: p.write_text("{not json"), "not valid JSON"),
    "key mismatch": (ENTRY_FILE, _flip_key, "another key"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_rebuilt_with_a_warning(
    cache: Path, tmp_path: Path, damage: str
) -> None:
    trained, record = zoo.load(MICRO, device="cpu")
    name, spoil, reason = DAMAGE[damage]
    spoil(record.path / name)
    with pytest.warns(zoo.CacheWarning, match=reason):
        rebuilt, again = zoo.load(MICRO, device="cpu")
    assert len(_log(tmp_path)) == 2
    # Retrained: the same model and losses (only the timings in the history differ).
    assert _same_weights(rebuilt, trained) and again.key == record.key
    assert again.history.val_loss == record.history.val_loss
    assert again.metrics == record.metrics
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.load(MICRO, device="cpu")  # sound again: no warning, no training
    assert len(_log(tmp_path)) == 2


# --- ready models (LM_COURSE_MODELS) --------------------------------------------------


def test_ready_models_are_used_first_and_never_written(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained, record = zoo.load(MICRO, device="cpu")
    published = tmp_path / "published"
    published.mkdir()
    record.path.rename(published / record.path.name)
    monkeypatch.setenv("LM_COURSE_MODELS", str(published))
    model, ready = zoo.load(MICRO, device="cpu")
    assert len(_log(tmp_path)) == 1, "a ready model must not be trained again"
    assert ready == record and ready.path.parent == published
    assert _same_weights(model, trained)
    assert zoo.list_entries() == [] and zoo.clear() == 0
    assert (published / record.path.name / WEIGHTS_FILE).is_file()
    # A damaged ready model is not used; the cache trains its own copy.
    _truncate(published / record.path.name / WEIGHTS_FILE)
    with pytest.warns(zoo.CacheWarning, match="sha256"):
        _, fresh = zoo.load(MICRO, device="cpu")
    assert len(_log(tmp_path)) == 2 and fresh.path.parent == cache


# --- several processes ----------------------------------------------------------------

WORKER = """
import dataclasses, hashlib, json, os, sys, time
from pathlib import Path
from zoo_helpers import MICRO
from lm_course import zoo
from lm_course.reference import load_reference

barrier, count = Path(sys.argv[1]), int(sys.argv[2])
(barrier / f"ready-{os.getpid()}").touch()
deadline = time.time() + 60
while len(list(barrier.glob("ready-*"))) < count and time.time() < deadline:
    time.sleep(0.01)
recipe = dataclasses.replace(MICRO, config={**MICRO.config, "sleep": 1.0})
model, record = zoo.load(recipe, device="cpu")
digest = hashlib.sha256()
for tensor in model.state_dict().values():
    digest.update(tensor.numpy().tobytes())
print(json.dumps({"weights": digest.hexdigest(), "record": repr(record)}))
"""


def test_two_processes_needing_one_model_train_it_once(
    cache: Path, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "OMP_NUM_THREADS": "1",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(barrier), "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
    outputs = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in results]
    assert outputs[0] == outputs[1]
    assert len(_log(tmp_path)) == 1, _log(tmp_path)
    assert len(zoo.list_entries()) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith((".tmp", ".old"))]


# --- warm and cold give the same outputs ----------------------------------------------


def _draw() -> tuple[list[float], float, float, bool]:
    """Numbers from every global generator, and the flush-denormal switch."""
    return (
        torch.rand(3).tolist(),
        random.random(),
        float(np.random.rand()),
        loader._flush_denormal_is_on(),
    )


def _load_after_seeding(device: str = "cpu") -> tuple:
    seed_everything(123)
    torch.set_flush_denormal(False)
    model, record = zoo.load("tiny-char-gpt", device=device)
    return model, record, _draw()


def test_warm_and_cold_loads_give_identical_models_records_and_random_state(
    cache: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    seed_everything(123)
    torch.set_flush_denormal(False)
    untouched = _draw()

    cold_model, cold_record, after_cold = _load_after_seeding()
    assert zoo.list_entries()[0].recipe == "tiny-char-gpt"
    warm_model, warm_record, after_warm = _load_after_seeding()

    assert after_cold == after_warm == untouched
    assert warm_record == cold_record and warm_record.history == cold_record.history
    assert _same_weights(cold_model, warm_model)
    assert not warm_model.training and not cold_model.training

    # The stored model is bit for bit the one training produced.
    recipe = zoo.get_recipe("tiny-char-gpt")
    config = dict(recipe.config)
    seed_everything(recipe.seed)
    trained = recipe.build(config)
    history, metrics = recipe.fit(trained, config, recipe.seed, torch.device("cpu"))
    assert _same_weights(trained, warm_model)
    assert history.val_loss == warm_record.history.val_loss
    assert metrics == warm_record.metrics
    # And it is a normal run of its recipe: within the shipped reference's band.
    assert load_reference("tiny-char-gpt").within(metrics["val_loss"])
    idx = torch.arange(32).remainder(65).unsqueeze(0)  # (1, 32)
    assert torch.equal(trained.eval()(idx)[0], warm_model(idx)[0])
    torch.set_flush_denormal(False)
