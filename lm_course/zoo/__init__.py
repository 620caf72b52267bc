"""The model zoo: named training recipes and the cache of the models they train.

A chapter that needs a trained model loads it by name; the first time, it is trained
and stored, afterwards it loads in about a second::

    from lm_course import zoo

    model, record = zoo.load("tiny-char-gpt", device="cpu")
    record.history.val_loss[-1]    # what the chapter's training cell reported

Modules: :mod:`~lm_course.zoo.recipe` (what a recipe is, the registry),
:mod:`~lm_course.zoo.fingerprint` (the cache key), :mod:`~lm_course.zoo.cache` (entries
on disk, locks, listing and clearing), :mod:`~lm_course.zoo.loader` (``load``) and
:mod:`~lm_course.zoo.recipes` (the course's recipes, one module per chapter).
"""

from .cache import (
    ENV_MODELS,
    CacheEntry,
    CacheWarning,
    EntryError,
    cache_root,
    clear,
    list_entries,
    published_root,
)
from .fingerprint import code_fingerprint, entry_key, key_material
from .loader import Record, load, preserved_global_state
from .recipe import Recipe, get_recipe, recipe_names, register

__all__ = [
    "ENV_MODELS",
    "CacheEntry",
    "CacheWarning",
    "EntryError",
    "Record",
    "Recipe",
    "cache_root",
    "clear",
    "code_fingerprint",
    "entry_key",
    "get_recipe",
    "key_material",
    "list_entries",
    "load",
    "preserved_global_state",
    "published_root",
    "recipe_names",
    "register",
]
