"""Trained models on disk: a folder per entry, written atomically, checked on read.

Layout of a models folder::

    models/
        tiny-char-gpt-seed0-3f9a1c2b7d4e5f60/     <recipe>-seed<seed>-<key prefix>
            model.safetensors                     the weights (no pickle)
            entry.json                            key, what decided it, config,
                                                  history, metrics, weights' sha256
        .locks/tiny-char-gpt-seed0-3f9a....lock   one lock file per entry

Two folders are searched: ``LM_COURSE_MODELS``, a read-only folder of ready models (the
checkpoints published with the course, in this same layout), first; then the cache,
``models/`` below ``LM_COURSE_CACHE`` (the folder downloads are cached in).

Safety rules:

* An entry is written into a temporary folder and renamed into place in one step, so a
  crash never leaves half an entry under the final name.
* Everything that reads or writes an entry of the cache holds that entry's file lock,
  so when several processes need the same model, one trains it and the others wait and
  then load it.
* An entry is used only if its JSON parses, its key is the expected one and the weights'
  sha256 matches; otherwise :func:`check_entry` raises :class:`EntryError` and the
  caller rebuilds it (with a :class:`CacheWarning`), never silently using it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from safetensors.torch import save_model
from torch import nn

from ..data import cache_dir, sha256_of
from ..training import unwrap_model
from .fingerprint import FORMAT, entry_key

ENV_MODELS = "LM_COURSE_MODELS"
WEIGHTS_FILE = "model.safetensors"
ENTRY_FILE = "entry.json"
LOCKS = ".locks"


class CacheWarning(UserWarning):
    """A cache entry failed its check and is being rebuilt."""


class EntryError(RuntimeError):
    """A cache entry exists but cannot be trusted (the message says why)."""


def cache_root() -> Path:
    """The writable models folder: ``models/`` below the download cache.

    The download cache is ``LM_COURSE_CACHE`` when set, else the system's cache folder.
    """
    return cache_dir() / "models"


def published_root() -> Path | None:
    """The read-only folder of ready models named by ``LM_COURSE_MODELS``, or None."""
    folder = os.environ.get(ENV_MODELS, "").strip()
    return Path(folder).expanduser() if folder else None


def entry_name(recipe: str, seed: int, key: str) -> str:
    """The folder name of an entry: ``<recipe>-seed<seed>-<first 16 hex of key>``."""
    return f"{recipe}-seed{seed}-{key[:16]}"


def entry_lock(root: Path, name: str) -> FileLock:
    """The inter-process lock of entry ``name`` in ``root`` (not yet acquired).

    Lock files are never deleted: removing one while another process waits on it would
    let two processes hold "the" lock at once.
    """
    folder = root / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"))


# --- reading --------------------------------------------------------------------------


def check_entry(folder: Path, key: str) -> dict[str, Any]:
    """Return the entry's JSON after checking it belongs to ``key`` and is complete.

    Raises:
        FileNotFoundError: there is no entry in ``folder``.
        EntryError: the entry is damaged: unreadable JSON, another format or key, or
            weights that are missing or differ from their recorded sha256 (truncated,
            overwritten).
    """
    entry_file = folder / ENTRY_FILE
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    try:
        contents = json.loads(entry_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EntryError(f"{ENTRY_FILE} is missing") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise EntryError(f"{ENTRY_FILE} is not valid JSON ({error})") from None
    if not isinstance(contents, dict):
        raise EntryError(f"{ENTRY_FILE} does not hold a JSON object")
    if contents.get("format") != FORMAT:
        raise EntryError(
            f"format {contents.get('format')!r}; this version reads format {FORMAT}"
        )
    material = contents.get("material")
    if contents.get("key") != key or not isinstance(material, dict):
        raise EntryError("it was stored under another key")
    if entry_key(material) != key:
        raise EntryError("what it records does not hash to its key (edited by hand?)")
    for name in ("history", "metrics", "config", "weights_sha256"):
        if name not in contents:
            raise EntryError(f"{ENTRY_FILE} has no {name!r}")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise EntryError(f"{WEIGHTS_FILE} is missing")
    actual = sha256_of(weights)
    if actual != contents["weights_sha256"]:
        raise EntryError(
            f"{WEIGHTS_FILE} has sha256 {actual[:12]}..., but the entry recorded "
            f"{str(contents['weights_sha256'])[:12]}... (truncated or overwritten)"
        )
    return contents


# --- writing --------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    """Flush a file, or (on POSIX) a folder's list of names, to disk."""
    if path.is_dir() and os.name == "nt":
        return  # Windows cannot open folders; its renames are durable enough here
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Delete ``folder``, renamed aside first so that no reader sees it half gone."""
    if not folder.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=f".old-{folder.name}-", dir=folder.parent))
    os.replace(folder, trash / folder.name)
    shutil.rmtree(trash, ignore_errors=True)


def write_entry(
    root: Path, name: str, model: nn.Module, contents: dict[str, Any]
) -> Path:
    """Store ``model``'s weights and ``contents`` as entry ``name`` of ``root``.

    ``contents`` must be JSON-serialisable; the weights' sha256 is added to it as
    ``weights_sha256``. The entry appears under its final name only when complete; an
    entry already there (a damaged one being rebuilt) is replaced. Call it holding the
    entry's lock. Returns the entry's folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        # safetensors stores a tensor shared by two names (tied embeddings) once.
        save_model(unwrap_model(model).cpu(), str(tmp / WEIGHTS_FILE))
        contents = {**contents, "weights_sha256": sha256_of(tmp / WEIGHTS_FILE)}
        # NaN is allowed: a recipe may show a run that diverges.
        text = json.dumps(contents, indent=1) + "\n"
        (tmp / ENTRY_FILE).write_text(text, encoding="utf-8")
        for path in (tmp / WEIGHTS_FILE, tmp / ENTRY_FILE, tmp):
            _fsync(path)
        _remove_tree(final)
        os.replace(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --- listing and clearing -------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """One stored model, as :func:`list_entries` reports it (not checked)."""

    recipe: str
    seed: int
    key: str
    path: Path
    size_bytes: int
    metrics: dict[str, Any]


def _entry_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.iterdir()
        if path.is_dir() and not path.name.startswith(".")
    )


def list_entries(root: Path | None = None) -> list[CacheEntry]:
    """The entries of the cache (or of ``root``), sorted by folder name.

    Only the JSON is read; damaged entries are listed with ``recipe`` set to ``"?"``.
    """
    entries = []
    for folder in _entry_folders(cache_root() if root is None else Path(root)):
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        try:
            data = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
            recipe, seed, key = data["recipe"], data["seed"], data["key"]
            metrics = data.get("metrics") or {}
        except (OSError, ValueError, KeyError, TypeError):
            recipe, seed, key, metrics = "?", -1, "", {}
        entries.append(CacheEntry(recipe, seed, key, folder, size, metrics))
    return entries


def clear(recipe: str | None = None, *, root: Path | None = None) -> int:
    """Delete the cache's entries of ``recipe`` (all when None); return how many.

    Only the writable cache is touched, never ``LM_COURSE_MODELS``. Each entry is
    deleted holding its lock, so a process training or loading it is not cut short.
    Leftovers of writes killed part way (a day old) are removed too.
    """
    root = cache_root() if root is None else Path(root)
    removed = 0
    for entry in list_entries(root):
        if recipe is not None and entry.recipe != recipe:
            continue
        with entry_lock(root, entry.path.name):
            _remove_tree(entry.path)
        removed += 1
    # A write in progress has a fresh temporary folder; one a day old was abandoned
    # by a process that was killed.
    cutoff = time.time() - 24 * 3600
    leftovers = [*root.glob(".tmp-*"), *root.glob(".old-*")] if root.is_dir() else []
    for leftover in leftovers:
        if leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)
    return removed
