"""Checkpoints that survive a crash and restore a run exactly.

A checkpoint is one ``step-NNNNNN`` folder of a run folder (see :mod:`.runfolder` for
the layout, the lock and how the newest intact checkpoint is found). Three safety rules:

* Only safetensors and JSON, never pickle: loading a pickle runs whatever code the file
  contains, loading safetensors only reads numbers.
* Atomic writes: everything is written into a temporary folder next to the final one,
  flushed to disk, then renamed in one step (``os.replace``). A crash or Ctrl-C part way
  through leaves the previous checkpoint untouched, never a half-written one.
* Only finite numbers: weights or optimizer state holding NaN or infinity are refused
  (:class:`NonFiniteCheckpoint`), so a diverged run can never replace, or push out, a
  good checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from ..checks import check_int
from .runfolder import (
    FORMAT_VERSION,
    LATEST_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    check_intact,
    checkpoint_name,
    latest_checkpoint,
    step_dirs,
)

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FILE",
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "NonFiniteCheckpoint",
    "checkpoint_name",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint",
    "unwrap_model",
]

# Optimizer settings that describe *how* the update is computed on this machine (fused
# CUDA kernel, foreach loops), not the optimisation itself; a checkpoint keeps the
# current ones, so a run saved on a GPU can resume on a CPU.
_IMPLEMENTATION_KEYS = ("foreach", "fused", "capturable", "differentiable")


class NonFiniteCheckpoint(ValueError):
    """The weights or the optimizer state hold NaN or infinity: not saved."""

    def __init__(self, what: str) -> None:
        """``what``: "the model holds NaN or infinite values (head.weight)"."""
        self.what = what
        super().__init__(
            f"{what}; a checkpoint of it would be useless, so it is not saved"
        )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel and ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # what torch.compile returns
            model = model._orig_mod
        else:
            return model


# --- writing --------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX; Windows cannot open folders)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    bad = [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        more = " ..." if len(bad) > 3 else ""
        raise NonFiniteCheckpoint(
            f"{what} holds NaN or infinite values ({', '.join(bad[:3])}{more})"
        )


def _optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Flatten the optimizer state into named tensors (``state.<param index>.<name>``).

    Per-parameter tensors (Adam's ``exp_avg``, ``exp_avg_sq``, ``step``) become tensors;
    the hyperparameters of each parameter group become JSON metadata.
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
    return tensors, metadata


def _save_optimizer(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path
) -> None:
    save_file(tensors, str(path), metadata=metadata)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename folder ``tmp`` to ``final``, replacing any ``final`` (a step saved
    twice)."""
    if not final.exists():
        os.replace(tmp, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
    os.replace(final, old / final.name)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _prune(checkpoint_dir: Path, keep: int | None, saved: int) -> None:
    """Keep the one just saved and the ``keep - 1`` newest before it.

    Folders of higher steps are left alone: they are left over from an earlier run (or
    damaged), and must not count against the good ones.
    """
    if keep is None:
        return
    older = [path for step, path in step_dirs(checkpoint_dir) if step < saved]
    for path in older[: max(len(older) - (keep - 1), 0)]:
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
        state: extra JSON-serialisable data for ``state.json`` (config, history, ...).
        keep: how many checkpoints to keep, newest first; ``None`` keeps all.

    Returns:
        The checkpoint folder. ``latest.json`` then points to it.

    Raises:
        NonFiniteCheckpoint: the weights or optimizer state hold NaN or infinity.
    """
    check_int("step", step, minimum=0)
    if keep is not None:
        check_int("keep", keep, minimum=1, hint=" (or None to keep all)")
    contents = {"format": FORMAT_VERSION, **(state or {}), "step": step}
    try:
        state_text = json.dumps(contents, indent=2) + "\n"
    except (TypeError, ValueError) as error:
        raise TypeError(
            "checkpoint state must be JSON-serialisable (numbers, strings, lists, "
            f"dicts): {error}"
        ) from None
    model = unwrap_model(model)
    _check_finite(model.state_dict(), "the model")
    if optimizer is not None:
        optimizer_tensors, optimizer_metadata = _optimizer_tensors(optimizer)
        _check_finite(optimizer_tensors, "the optimizer state")

    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=checkpoint_dir))
    try:
        save_model(model, str(tmp / MODEL_FILE))
        if optimizer is not None:
            _save_optimizer(optimizer_tensors, optimizer_metadata, tmp / OPTIMIZER_FILE)
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
    _prune(checkpoint_dir, keep, saved=step)
    return final


# --- reading --------------------------------------------------------------------------


def _checkpoint_folder(path: str | os.PathLike[str]) -> Path:
    """A checkpoint folder, from itself, a run folder (its latest) or a model file."""
    path = Path(path)
    if path.is_file():
        return path.parent
    if (path / STATE_FILE).is_file() or (path / MODEL_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}: expected a step-NNNNNN folder, a "
            "checkpoint_dir holding one, or a model.safetensors file"
        )
    return latest


def _check_weights_fit(file: Path, model: nn.Module) -> None:
    """Raise a readable error if the weights in ``file`` do not fit ``model``."""
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
            + ". Build the model with the configuration it was trained with (see "
            "'meta' in its state.json), or point to another checkpoint."
        )


def _load_fitting_weights(file: Path, model: nn.Module) -> None:
    """Load weights :func:`_check_weights_fit` accepted, onto the model's device."""
    # Read onto the CPU, then copied into the model's tensors wherever they live.
    # Not safetensors' ``load_model``: it refuses a cuDNN LSTM on a GPU, whose weights
    # share one flattened buffer. A tied tensor is stored once, under one of its names;
    # the fit check above has accepted the names this leaves missing.
    model.load_state_dict(load_file(str(file)), strict=False)


def load_model_weights(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """Load weights into ``model`` in place (onto the device it is on) and return it.

    ``path`` may be a ``model.safetensors`` file, a ``step-NNNNNN`` folder, or a run's
    ``checkpoint_dir`` (its newest intact checkpoint is used). A checkpoint of a
    different model shape raises ``ValueError`` naming the differing tensors; the model
    is left untouched.
    """
    path = Path(path)
    file = path if path.is_file() else _checkpoint_folder(path) / MODEL_FILE
    model = unwrap_model(model)
    _check_weights_fit(file, model)
    _load_fitting_weights(file, model)
    return model


def _load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Rebuild the optimizer's state dict from the file :func:`save_checkpoint` wrote,
    and load it."""
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
            f"the optimizer state in {str(path)!r} has parameter groups of sizes "
            f"{saved_sizes}, this optimizer {current_sizes}; resume with the same "
            "model and optimizer setup"
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
    """Restore ``model`` (and ``optimizer``) from a checkpoint; return its state.json.

    ``path`` is a ``step-NNNNNN`` folder or a ``checkpoint_dir`` (then its newest intact
    checkpoint is used). The returned dict holds at least ``"step"`` and ``"format"``.
    A damaged checkpoint raises :class:`~.runfolder.DamagedCheckpoint` naming the file.
    """
    folder = _checkpoint_folder(path)
    state = check_intact(folder)
    # Check everything before changing anything, so a bad checkpoint leaves the model
    # as it was.
    model = unwrap_model(model)
    _check_weights_fit(folder / MODEL_FILE, model)
    if optimizer is not None:
        if not (folder / OPTIMIZER_FILE).is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} holds no optimizer state; pass optimizer=None to "
                "load only the weights"
            )
        _load_optimizer(folder / OPTIMIZER_FILE, optimizer)
    _load_fitting_weights(folder / MODEL_FILE, model)
    return state
