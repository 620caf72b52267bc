"""``load(name)``: a trained model from the cache, trained on demand the first time.

::

    from lm_course import zoo

    model, record = zoo.load("tiny-char-gpt", device="cpu")
    record.history.val_loss[-1], record.metrics

A warm cache loads in about a second; a cold one trains (with a progress bar, which
``LM_COURSE_PROGRESS=0`` hides), stores the result, then loads it back the same way a
warm cache would. So a notebook prints the same outputs either way:

* the model is always a freshly built one with the stored weights, bit for bit;
* the record is always read back from the stored JSON;
* the global random state (Python's, NumPy's and PyTorch's generators) and the
  flush-denormal switch are put back as they were, though training reseeds them.
"""

from __future__ import annotations

import contextlib
import json
import platform
import random
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import Timeout
from torch import nn

from ..checks import check_int
from ..progress import progress_enabled
from ..training import History, load_model_weights, pick_device, seed_everything
from .cache import (
    WEIGHTS_FILE,
    CacheWarning,
    EntryError,
    cache_root,
    check_entry,
    entry_lock,
    entry_name,
    published_root,
    write_entry,
)
from .fingerprint import FORMAT, entry_key, key_material
from .recipe import Recipe, get_recipe


@dataclass(frozen=True, repr=False)
class Record:
    """What training a recipe produced, besides the weights.

    Attributes:
        recipe: the recipe's name.
        seed: the seed it was trained with.
        key: the cache key (sha256 hex of everything that decided the model).
        config: the recipe's config.
        history: the :class:`~lm_course.training.History` of the training run.
        metrics: what the recipe's ``fit`` returned besides the history.
        trained_on: where and how long it trained: device, torch version, seconds.
        path: the entry's folder (not compared: the same model may sit in two folders).
    """

    recipe: str
    seed: int
    key: str
    config: dict[str, Any]
    history: History
    metrics: dict[str, Any]
    trained_on: dict[str, Any]
    path: Path = field(compare=False)

    def __repr__(self) -> str:
        # Notebooks print it and nbval compares it: no machine paths, and no key (it
        # changes with every edit of the code it covers, the printed model does not).
        steps = self.history.steps[-1] if self.history.steps else 0
        return f"Record({self.recipe!r}, seed={self.seed}, steps={steps})"


def _record(contents: dict[str, Any], folder: Path) -> Record:
    return Record(
        recipe=contents["recipe"],
        seed=contents["seed"],
        key=contents["key"],
        config=contents["config"],
        history=History.from_dict(contents["history"]),
        metrics=contents["metrics"],
        trained_on=contents.get("trained_on", {}),
        path=folder,
    )


# --- the global state that training changes -------------------------------------------


def _flush_denormal_is_on() -> bool:
    """True when the CPU flushes denormal floats to zero (torch has no getter)."""
    return bool((torch.tensor([1e-39]) * 1.0).item() == 0.0)


@contextlib.contextmanager
def preserved_global_state(device: torch.device | None = None) -> Iterator[None]:
    """Put back the random generators and the denormal switch when the block ends.

    Training seeds Python's, NumPy's and PyTorch's global generators (and the GPU's) and
    may switch flush-denormal on; loading from the cache does neither. Restoring them
    makes the cells after ``load`` draw the same random numbers whether the cache was
    warm or cold.
    """
    if device is not None and device.type == "cuda":
        torch.cuda.init()  # so its generators exist now and can be saved
    python_state = random.getstate()
    torch_state = torch.get_rng_state()
    cuda_states = (
        torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    )
    mps = device is not None and device.type == "mps"
    mps_state = torch.mps.get_rng_state() if mps else None
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    flush = _flush_denormal_is_on()
    grad = torch.is_grad_enabled()
    try:
        yield
    finally:
        random.setstate(python_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        if mps_state is not None:
            torch.mps.set_rng_state(mps_state)
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)
        torch.set_flush_denormal(flush)
        torch.set_grad_enabled(grad)


# --- loading and training -------------------------------------------------------------


def _say(message: str) -> None:
    """Tell the reader what is happening, unless progress output is switched off."""
    if progress_enabled():
        print(message, file=sys.stderr, flush=True)


def _try_load(
    folder: Path, key: str, recipe: Recipe, device: torch.device
) -> tuple[nn.Module, Record] | None:
    """The model and record of a sound entry; None (with a warning if damaged) else."""
    try:
        contents = check_entry(folder, key)
        model = recipe.build(contents["config"])
        load_model_weights(folder / WEIGHTS_FILE, model.to(device))
        return model.eval(), _record(contents, folder)
    except FileNotFoundError:
        return None
    except (EntryError, ValueError, KeyError, TypeError) as error:
        # ValueError: weights that do not fit the model; Key/TypeError: JSON whose
        # fields are not what this version writes.
        warnings.warn(
            f"the stored model {folder.name!r} in {folder.parent} failed its check "
            f"({error}); it is not used and will be trained again",
            CacheWarning,
            stacklevel=3,
        )
        return None


def _fit(
    recipe: Recipe, seed: int, device: torch.device
) -> tuple[nn.Module, dict[str, Any]]:
    """Build and train the recipe's model; return it and the JSON its entry stores."""
    config = dict(recipe.config)
    seed_everything(seed)  # the untrained weights depend on the seed too
    model = recipe.build(config).to(device)
    start = time.perf_counter()
    result = recipe.fit(model, config, seed, device)
    seconds = time.perf_counter() - start
    history, metrics = result if isinstance(result, tuple) else (result, {})
    if not isinstance(history, History) or not isinstance(metrics, dict):
        raise TypeError(
            f"recipe {recipe.name!r}: fit must return a History or (History, dict of "
            f"metrics), got {type(result).__name__}"
        )
    try:
        json.dumps(metrics)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"recipe {recipe.name!r}: the metrics fit returns must be "
            f"JSON-serialisable (numbers, strings, lists, dicts): {error}"
        ) from None
    trained_on = {
        "device": history.device,
        "precision": history.precision,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
    }
    contents = {"history": history.to_dict(), "metrics": metrics}
    return model, {**contents, "trained_on": trained_on}


def load(
    recipe: str | Recipe,
    *,
    device: str | torch.device = "auto",
    seed: int | None = None,
) -> tuple[nn.Module, Record]:
    """The trained model of ``recipe`` on ``device``, and its :class:`Record`.

    Looks in ``LM_COURSE_MODELS`` (ready models, read only), then in the cache; trains
    and stores the model when neither has a sound entry. Two processes asking for the
    same model at once train it once: the second waits, then loads.

    Args:
        recipe: a registered name such as ``"tiny-char-gpt"``, or a :class:`Recipe`.
        device: where the model goes (and trains, if it must): ``"auto"``, ``"cpu"``,
            ``"cuda"``, ... The kind of device is part of the key: a GPU computes in
            other precisions, so its models are stored apart from CPU ones.
        seed: train with this seed instead of the recipe's (a separate entry).

    Returns:
        ``(model, record)``: the model in eval mode, the record of its training.
    """
    recipe = get_recipe(recipe)
    seed = recipe.seed if seed is None else check_int("seed", seed, minimum=0)
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    material = key_material(recipe, seed, device.type)
    key = entry_key(material)
    name = entry_name(recipe.name, seed, key)
    with preserved_global_state(device):
        published = published_root()
        if published is not None:
            found = _try_load(published / name, key, recipe, device)
            if found is not None:
                return found
        root = cache_root()
        lock = entry_lock(root, name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            _say(f"Waiting for another process to finish training {recipe.name!r}...")
            lock.acquire()
        try:
            found = _try_load(root / name, key, recipe, device)
            if found is not None:
                return found
            _say(
                f"Training {recipe.name!r} (seed {seed}); it is stored for next time "
                f"in {root}"
            )
            model, contents = _fit(recipe, seed, device)
            header = {"format": FORMAT, "key": key, "material": material}
            header.update(recipe=recipe.name, seed=seed, config=material["config"])
            write_entry(root, name, model, {**header, **contents})
            del model
            # Load it back exactly as a warm cache would, so both give the same objects.
            found = _try_load(root / name, key, recipe, device)
            if found is None:
                raise RuntimeError(
                    f"the entry just written to {root / name} is unusable"
                )
            return found
        finally:
            lock.release()
