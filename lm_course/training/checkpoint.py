"""Checkpoints that survive a crash and restore a run exactly.

Layout of a checkpoint folder::

    checkpoint_dir/
        latest.json                  {"checkpoint": "step-000500", "step": 500}
        step-000500/
            model.safetensors        the weights
            optimizer.safetensors    AdamW's moments and step counts, one tensor each
            state.json               step, config, history, meta, counters

Two safety rules:

* Only safetensors and JSON, never pickle: loading a pickle runs whatever code the file
  contains, loading safetensors only reads numbers.
* Atomic writes: everything is written into a temporary folder next to the final one,
  flushed to disk, then renamed in one step (``os.replace``). A crash or Ctrl-C part way
  through leaves the previous checkpoint untouched, never a half-written one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")

# Optimizer settings that describe *how* the update is computed on this machine (fused CUDA
# kernel, foreach loops), not the optimisation itself; a checkpoint keeps the current ones,
# so a run saved on a GPU can resume on a CPU.
_IMPLEMENTATION_KEYS = ("foreach", "fused", "capturable", "differentiable")


def checkpoint_name(step: int) -> str:
    """Folder name for ``step``: ``step-000500``."""
    return f"step-{step:06d}"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel and/or ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # what torch.compile returns
            model = model._orig_mod
        else:
            return model


# --- writing ---------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX only; Windows cannot open folders)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Flatten the optimizer state into named tensors (``state.<param index>.<name>``).

    Per-parameter tensors (Adam's ``exp_avg``, ``exp_avg_sq``, ``step``) go into the
    safetensors file; the hyperparameters of each parameter group go, as JSON, into its
    metadata.
    """
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for index, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                other.setdefault(str(index), {})[name] = value
    metadata = {
        "format": str(FORMAT_VERSION),
        "param_groups": json.dumps(state_dict["param_groups"]),
        "other_state": json.dumps(other),
    }
    save_file(tensors, str(path), metadata=metadata)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename folder ``tmp`` to ``final``, replacing any ``final`` (a step saved twice)."""
    if not final.exists():
        os.replace(tmp, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
    os.replace(final, old / final.name)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _step_dirs(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoint folders (those with a state.json), sorted by step."""
    found = []
    for path in checkpoint_dir.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _prune(checkpoint_dir: Path, keep: int | None, protect: Path) -> None:
    """Delete all but the newest ``keep`` checkpoints (never ``protect``, the one just saved)."""
    if keep is None:
        return
    folders = [path for _, path in _step_dirs(checkpoint_dir)]
    for path in folders[: max(len(folders) - keep, 0)]:
        if path != protect:
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    checkpoint_dir: str | os.PathLike[str],
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    state: dict[str, Any] | None = None,
    keep: int | None = 2,
) -> Path:
    """Save ``model`` (and ``optimizer``) as ``checkpoint_dir/step-NNNNNN``, atomically.

    Args:
        checkpoint_dir: folder holding the run's checkpoints; created if missing.
        step: number of optimizer steps completed.
        model: the model (DDP / ``torch.compile`` wrappers are unwrapped). Tied weights,
            one tensor under two names, are stored once.
        optimizer: optional; its state is stored as tensors plus JSON hyperparameters.
        state: extra JSON-serialisable data for ``state.json`` (config, history, meta ...).
        keep: how many checkpoints to keep, newest first; ``None`` keeps all.

    Returns:
        The checkpoint folder. ``latest.json`` then points to it.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    if keep is not None and (
        isinstance(keep, bool) or not isinstance(keep, int) or keep < 1
    ):
        raise ValueError(
            f"keep must be a positive integer or None (keep all), got {keep!r}"
        )
    contents = {"format": FORMAT_VERSION, **(state or {}), "step": step}
    try:
        state_text = json.dumps(contents, indent=2) + "\n"
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"checkpoint state must be JSON-serialisable (numbers, strings, lists, dicts): {error}"
        ) from None

    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=checkpoint_dir))
    try:
        save_model(unwrap_model(model), str(tmp / MODEL_FILE))
        if optimizer is not None:
            _save_optimizer(optimizer, tmp / OPTIMIZER_FILE)
        (tmp / STATE_FILE).write_text(state_text, encoding="utf-8")
        for path in tmp.iterdir():
            _fsync_file(path)
        _fsync_dir(tmp)
        _replace_dir(tmp, final)
        _fsync_dir(checkpoint_dir)
        _write_json_atomic(
            checkpoint_dir / LATEST_FILE, {"checkpoint": final.name, "step": step}
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(checkpoint_dir, keep, protect=final)
    return final


# --- reading ---------------------------------------------------------------------------


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder in ``checkpoint_dir``, or None if there is none.

    Follows ``latest.json``; if it is missing or points nowhere, falls back to the complete
    ``step-*`` folder with the highest step.
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    pointer = checkpoint_dir / LATEST_FILE
    if pointer.is_file():
        try:
            candidate = (
                checkpoint_dir
                / json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
            )
            if (candidate / STATE_FILE).is_file():
                return candidate
        except (ValueError, KeyError, TypeError):
            pass  # a hand-edited pointer: fall back to scanning
    folders = _step_dirs(checkpoint_dir)
    return folders[-1][1] if folders else None


def _checkpoint_folder(path: str | os.PathLike[str]) -> Path:
    """Accept a checkpoint folder, a run folder (its latest checkpoint) or a model file."""
    path = Path(path)
    if path.is_file():
        return path.parent
    if (path / STATE_FILE).is_file() or (path / MODEL_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}: expected a step-NNNNNN folder, a checkpoint_dir "
            "holding one, or a model.safetensors file"
        )
    return latest


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.state_dict().values():
        return tensor.device
    return torch.device("cpu")


def _check_weights_fit(file: Path, model: nn.Module) -> None:
    """Raise a readable error if the weights in ``file`` do not fit ``model``, before loading."""
    if not file.is_file():
        raise FileNotFoundError(f"no model weights at {str(file)!r}")
    expected = model.state_dict()
    with safe_open(str(file), framework="pt") as handle:
        names = list(handle.keys())
        stored = {key: list(handle.get_slice(key).get_shape()) for key in names}
    problems = []
    for key, shape in stored.items():
        if key not in expected:
            problems.append(f"{key!r} is in the checkpoint but not in the model")
        elif list(expected[key].shape) != shape:
            problems.append(
                f"{key!r} has shape {shape} in the checkpoint but "
                f"{list(expected[key].shape)} in the model"
            )
    stored_ptrs = {expected[key].data_ptr() for key in stored if key in expected}
    for key, tensor in expected.items():
        # save_model stores a tied tensor under one of its names only.
        if key not in stored and tensor.data_ptr() not in stored_ptrs:
            problems.append(f"{key!r} is in the model but not in the checkpoint")
    if problems:
        more = (
            f" (and {len(problems) - 3} more differences)" if len(problems) > 3 else ""
        )
        raise ValueError(
            f"the checkpoint {str(file)!r} does not fit this model: "
            + "; ".join(problems[:3])
            + more
            + ". Build the model with the configuration it was trained with (see 'meta' in "
            "its state.json), or point to another checkpoint."
        )


def load_model_weights(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """Load weights into ``model`` in place (onto the device it is on) and return it.

    ``path`` may be a ``model.safetensors`` file, a ``step-NNNNNN`` folder, or a run's
    ``checkpoint_dir`` (its latest checkpoint is used). A checkpoint of a different model
    shape raises ``ValueError`` naming the differing tensors; the model is left untouched.
    """
    path = Path(path)
    file = path if path.is_file() else _checkpoint_folder(path) / MODEL_FILE
    model = unwrap_model(model)
    _check_weights_fit(file, model)
    load_model(model, file, strict=True, device=str(_model_device(model)))
    return model


def _load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Rebuild the optimizer's state dict from :func:`_save_optimizer`'s file and load it."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "param_groups" not in metadata:
        raise ValueError(
            f"{str(path)!r} is not an optimizer checkpoint written by lm_course"
        )
    saved_groups = json.loads(metadata["param_groups"])
    current_groups = optimizer.state_dict()["param_groups"]
    saved_sizes = [len(group["params"]) for group in saved_groups]
    current_sizes = [len(group["params"]) for group in current_groups]
    if saved_sizes != current_sizes:
        raise ValueError(
            f"the optimizer state in {str(path)!r} has parameter groups of sizes {saved_sizes}, "
            f"this optimizer {current_sizes}; resume with the same model and optimizer setup"
        )
    for saved, current in zip(saved_groups, current_groups):
        if "betas" in saved:
            saved["betas"] = tuple(saved["betas"])  # JSON turned the tuple into a list
        for key in _IMPLEMENTATION_KEYS:
            if key in current:
                saved[key] = current[key]

    state: dict[int, dict[str, Any]] = {}
    for name, tensor in load_file(str(path)).items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, values in json.loads(metadata.get("other_state", "{}")).items():
        state.setdefault(int(index), {}).update(values)
    # load_state_dict moves each tensor to its parameter's device.
    optimizer.load_state_dict({"state": state, "param_groups": saved_groups})


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) from a checkpoint; return its ``state.json``.

    ``path`` is a ``step-NNNNNN`` folder or a ``checkpoint_dir`` (then its latest checkpoint
    is used). The returned dict holds at least ``"step"`` and ``"format"``.
    """
    folder = _checkpoint_folder(path)
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} has no {STATE_FILE}; it is not a checkpoint"
        )
    state = json.loads(state_file.read_text(encoding="utf-8"))
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{str(state_file)!r} has checkpoint format {state.get('format')!r}; "
            f"this version of lm_course reads format {FORMAT_VERSION}"
        )
    # Check everything before changing anything, so a bad checkpoint leaves the model as it was.
    _check_weights_fit(folder / MODEL_FILE, unwrap_model(model))
    if optimizer is not None:
        if not (folder / OPTIMIZER_FILE).is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} holds no optimizer state; pass optimizer=None to load only "
                "the weights"
            )
        _load_optimizer(folder / OPTIMIZER_FILE, optimizer)
    load_model_weights(folder / MODEL_FILE, model)
    return state
