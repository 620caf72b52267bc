"""A recipe: everything that decides a trained model, under one name.

A chapter that needs a trained model describes it once, as a :class:`Recipe`, and
registers it; :func:`lm_course.zoo.load` then trains it on first use and loads it from
the cache afterwards. A recipe says

* how to build the untrained model from its config (``build(config) -> nn.Module``);
* how to train it (``fit(model, config, seed, device) -> History`` or
  ``(History, metrics)``);
* which data files it reads (paths in :mod:`lm_course.data`'s registry, whose pinned
  sha256s become part of the cache key), its seed, and the modules whose code decides
  the result (their source is fingerprinted; the recipe's own module always is).

Recipes live in ``lm_course/zoo/recipes/``, one small module per chapter; each module
calls :func:`register` at import, and the registry imports them all the first time a
name is looked up.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..checks import check_int
from ..data import data_file
from ..training import History

Metrics = dict[str, Any]
FitResult = History | tuple[History, Metrics]
Build = Callable[[dict[str, Any]], nn.Module]
Fit = Callable[[nn.Module, dict[str, Any], int, torch.device], FitResult]

_REGISTRY: dict[str, Recipe] = {}
_DISCOVERED = False
_RECIPE_PACKAGE = "lm_course.zoo.recipes"


@dataclass(frozen=True)
class Recipe:
    """A named way to make a trained model; see the module docstring.

    Args:
        name: the name chapters load it by, e.g. ``"ch04-gpt"`` (letters, digits, ``-``,
            ``_`` and ``.``; it names the cache folder).
        build: ``build(config) -> nn.Module``, the untrained model. It must not depend
            on anything but ``config``: a warm cache builds the model the same way, then
            loads the stored weights into it.
        fit: ``fit(model, config, seed, device) -> History``, or ``(History, metrics)``
            where ``metrics`` is a JSON-serialisable dict such as ``{"val_loss": 1.7}``.
            It trains ``model`` in place on ``device``, drawing all randomness from
            ``seed`` (``lm_course.training.train`` does).
        config: JSON-serialisable settings given to ``build`` and ``fit``.
        data: registry paths of the data files ``fit`` reads, e.g.
            ``("tinyshakespeare/input.txt",)``.
        seed: the default seed; ``load(name, seed=...)`` trains other seeds.
        code: importable module or package names whose source decides the result, e.g.
            ``("lm_course.models.gpt", "lm_course.training")``. A package stands for
            every module in it.
        needs: names of recipes whose trained models ``fit`` starts from (it loads
            them with ``zoo.load``); their keys become part of this one's, so
            retraining one of them retrains this one too.
        description: one line for listings.
    """

    name: str
    build: Build
    fit: Fit
    config: Mapping[str, Any] = field(default_factory=dict)
    data: tuple[str, ...] = ()
    seed: int = 0
    code: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _valid_name(self.name):
            raise ValueError(
                f"Recipe.name must be a non-empty string of letters, digits, '-', '_' "
                f"and '.', got {self.name!r}"
            )
        for attribute in ("build", "fit"):
            if not callable(getattr(self, attribute)):
                raise TypeError(
                    f"Recipe.{attribute} must be a function, got "
                    f"{type(getattr(self, attribute)).__name__}"
                )
        if not isinstance(self.config, Mapping):
            raise TypeError(
                f"Recipe.config must be a dict, got {type(self.config).__name__}"
            )
        try:
            json.dumps(dict(self.config), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Recipe.config must be JSON-serialisable (numbers, strings, lists, "
                f"dicts): {error}"
            ) from None
        for attribute in ("data", "code", "needs"):
            value = getattr(self, attribute)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(
                    f"Recipe.{attribute} must be a tuple of strings, got {value!r}"
                )
            object.__setattr__(self, attribute, tuple(value))
        for path in self.data:
            data_file(path)  # an unknown path fails here, naming the known ones
        check_int("Recipe.seed", self.seed, minimum=0)


def _valid_name(name: str) -> bool:
    return (
        bool(name) and all(c.isalnum() or c in "-_." for c in name) and name[0] != "."
    )


def register(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Add ``recipe`` to the registry under its name and return it.

    A second recipe under a taken name is an error (two chapters would share a cache
    key by accident) unless ``replace=True``.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    known = _REGISTRY.get(recipe.name)
    if known is not None and known is not recipe and not replace:
        raise ValueError(
            f"a recipe named {recipe.name!r} is already registered; pick another name "
            "or pass replace=True"
        )
    _REGISTRY[recipe.name] = recipe
    return recipe


def _discover() -> None:
    """Import every module of ``lm_course.zoo.recipes`` once, so each registers."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module(_RECIPE_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{_RECIPE_PACKAGE}.{module.name}")
    _DISCOVERED = True


def recipe_names() -> list[str]:
    """The names of every registered recipe, sorted."""
    _discover()
    return sorted(_REGISTRY)


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe registered as ``name`` (a :class:`Recipe` is returned as it is)."""
    if isinstance(name, Recipe):
        return name
    if not isinstance(name, str):
        raise TypeError(f"recipe must be a name or a Recipe, got {type(name).__name__}")
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown recipe {name!r}; registered: {', '.join(recipe_names())}"
        )
    return _REGISTRY[name]
