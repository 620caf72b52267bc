"""The cache key: a sha256 of everything that decides a trained model.

Four things decide what training produces: the recipe's config, the data, the seed and
the code that builds and trains the model (plus the kind of device, since a GPU computes
in other precisions and orders). :func:`key_material` collects them as one JSON object
and :func:`entry_key` hashes it. Change any of them and the key changes, so a stale
model is never loaded for a new recipe.

Code is fingerprinted by its syntax tree, not its bytes: comments, docstrings, blank
lines, formatting and line endings do not decide a result, so editing the prose of a
module or running a formatter does not force every reader to retrain.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..data import data_file
from .recipe import Recipe, get_recipe

FORMAT = 1

# (path, mtime_ns, size) -> digest: parsing a module takes milliseconds, and chapters
# ask for the same keys again and again.
_DIGESTS: dict[tuple[str, int, int], str] = {}
# Fields that carry no meaning for the result: how a name is used (load or store) is
# fixed by where it stands; type comments and the "u" string prefix change nothing.
_SKIPPED_FIELDS = {"ctx", "type_comment", "kind"}
_DOCSTRING_HOLDERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, _DOCSTRING_HOLDERS)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _canonical(node: Any) -> Any:
    """A JSON-able form of a syntax tree that leaves out empty fields.

    New Python versions add optional fields (``type_params`` in 3.12) and print trees
    differently (``ast.dump`` in 3.13); leaving out empty ones keeps the digest of the
    same source the same across versions.
    """
    if isinstance(node, ast.AST):
        fields = {}
        for name, value in ast.iter_fields(node):
            if name in _SKIPPED_FIELDS:
                continue
            canonical = _canonical(value)
            if canonical is not None and canonical != []:
                fields[name] = canonical
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    if isinstance(node, str | int | float | bool) or node is None:
        return node
    return repr(node)  # bytes, complex and Ellipsis constants


def source_digest(source: str) -> str:
    """sha256 of Python source, blind to comments, docstrings and formatting."""
    tree = _strip_docstrings(ast.parse(source))
    text = json.dumps(_canonical(tree), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """:func:`source_digest` of a ``.py`` file (remembered until the file changes)."""
    path = Path(path)
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _DIGESTS:
        _DIGESTS[cache_key] = source_digest(path.read_text(encoding="utf-8"))
    return _DIGESTS[cache_key]


def _module_files(name: str) -> dict[str, Path]:
    """``{module name: source file}`` for a module, or for every module of a package."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(
            f"cannot fingerprint {name!r}: it is not a module or package with Python "
            "source; list the modules whose code decides the trained model"
        )
    if not spec.submodule_search_locations:
        return {name: Path(spec.origin)}
    files = {}
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join((name, *parts))] = path
    return files


def _function_digest(function: Callable[..., Any]) -> tuple[str, str]:
    """``(label, digest)`` for the code a recipe's function comes from.

    A function from a module file stands for the whole file (helpers included); one
    typed into a notebook, whose module has no file, stands for its own source.
    """
    module = sys.modules.get(getattr(function, "__module__", ""), None)
    file = getattr(module, "__file__", None)
    in_file = module is not None and module.__name__ != "__main__" and file
    if in_file and str(file).endswith(".py") and Path(file).is_file():
        return module.__name__, file_digest(file)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        raise ValueError(
            f"cannot read the source of {function!r}; define the recipe's functions "
            "in a module or a notebook cell"
        ) from None
    label = f"{getattr(function, '__module__', '?')}.{function.__qualname__}"
    return label, source_digest(textwrap.dedent(source))


def code_fingerprint(recipe: Recipe) -> dict[str, str]:
    """``{module name: digest}`` for the recipe's own code and every module it lists."""
    digests: dict[str, str] = {}
    for function in (recipe.build, recipe.fit):
        label, digest = _function_digest(function)
        digests[label] = digest
    for name in recipe.code:
        for module, path in _module_files(name).items():
            digests[module] = file_digest(path)
    return dict(sorted(digests.items()))


def data_fingerprint(paths: Iterable[str]) -> dict[str, str]:
    """``{registry path: pinned sha256}`` for the data files a recipe reads."""
    return {path: data_file(path).sha256 for path in sorted(paths)}


def key_material(
    recipe: Recipe, seed: int, device_type: str, *, _path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Everything that decides the trained model, as one JSON-serialisable dict.

    ``needs`` holds the keys of the recipes this one starts from (their default seeds,
    the same kind of device), so it changes whenever one of them does.
    """
    if recipe.name in _path:
        cycle = " -> ".join((*_path, recipe.name))
        raise ValueError(f"recipes need each other in a circle: {cycle}")
    needs = {}
    for name in recipe.needs:
        parent = get_recipe(name)
        material = key_material(
            parent, parent.seed, device_type, _path=(*_path, recipe.name)
        )
        needs[name] = entry_key(material)
    return {
        "format": FORMAT,
        "recipe": recipe.name,
        "config": dict(recipe.config),
        "seed": seed,
        "data": data_fingerprint(recipe.data),
        "code": code_fingerprint(recipe),
        "needs": needs,
        "device": device_type,
    }


def entry_key(material: dict[str, Any]) -> str:
    """The sha256 (hex) of ``material`` written as canonical JSON."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
