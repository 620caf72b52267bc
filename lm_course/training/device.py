"""Where training runs and how reproducibly: device choice, mixed precision, seeds.

The course runs everywhere from a laptop CPU to a data-centre GPU. One function,
:func:`default_device`, decides which device "auto" means (CUDA, then Apple's MPS, then
the CPU); the trainer, the notebooks' ``setup()`` and the command line all ask it, so a
model trained in a notebook and the inputs the notebook builds land on the same device.
"""

from __future__ import annotations

import contextlib
import random

import torch
from torch import nn

from ..checks import check_int

PRECISIONS = ("auto", "float32", "bfloat16")

# Multiplier for `derive_seed`: a prime larger than any step or micro-step count we
# expect, so (seed, step, micro) tuples map to distinct seeds.
_SEED_PRIME = 1_000_003
_SEED_MODULUS = 2**63 - 1


def default_device() -> torch.device:
    """The device ``"auto"`` means: CUDA if present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_devices() -> list[str]:
    """Names of the devices this machine can use, e.g. ``["cpu", "cuda", "cuda:0"]``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def pick_device(name: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device`` that exists on this machine.

    ``"auto"`` asks :func:`default_device`. Any other name (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"``) must be available here; if it is not, the error lists what
    is.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"device must be a string such as 'auto' or 'cpu', got {name!r}"
        )
    if name == "auto":
        return default_device()
    available = available_devices()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"device={name!r} is not a device name; use 'auto' or one of {available}"
        ) from None
    if device.type != "cpu" and name not in available:
        raise ValueError(
            f"device={name!r} is not available on this machine; use 'auto' or one of "
            f"{available}"
        )
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU if it has none)."""
    for tensor in model.state_dict().values():
        return tensor.device
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """A short human description: ``"cpu (2 threads)"``, ``"NVIDIA H100 80GB HBM3"``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def resolve_precision(
    device: torch.device, precision: str | torch.dtype = "auto"
) -> torch.dtype:
    """The dtype the forward pass computes in: ``torch.float32`` or ``torch.bfloat16``.

    ``"auto"`` means bfloat16 on a CUDA GPU that supports it (every GPU since Ampere)
    and float32 everywhere else: a CPU without bfloat16 instructions is slower in
    bfloat16, and stored notebook outputs must not depend on which CPU made them (the
    ``cpu`` preset asks for bfloat16 where the CPU has the instructions). A dtype that
    was resolved already passes through unchanged.
    """
    if precision in (torch.float32, torch.bfloat16):
        return precision  # type: ignore[return-value]
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if precision == "bfloat16" and device.type == "cuda" and not cuda_bf16:
        raise ValueError(
            f"precision='bfloat16' is not supported by {describe_device(device)}; "
            "use precision='float32' (or 'auto')"
        )
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def autocast(
    device: torch.device, precision: str | torch.dtype = "auto"
) -> contextlib.AbstractContextManager:
    """A context for the forward pass: bfloat16 autocast, or nothing for float32.

    Weights and optimizer state stay in float32 either way; autocast only runs the
    matrix multiplications in bfloat16. Unlike float16, bfloat16 has float32's exponent
    range, so no loss scaling is needed. The trainer resolves the precision once and
    passes the dtype.
    """
    dtype = resolve_precision(device, precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (when installed) and PyTorch's random generators."""
    seed = check_int("seed", seed, minimum=0)
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)


def seed_torch(seed: int, device: torch.device) -> None:
    """Seed PyTorch's global generators for the CPU and ``device`` (dropout uses them).

    Cheaper than ``torch.manual_seed``, which on a machine without a GPU still records a
    pending seed for CUDA, with a stack trace, on every call; the trainer reseeds every
    step.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """Mix integers, e.g. ``(seed, step, micro_step)``, into one seed for a generator.

    Plain arithmetic, not Python's ``hash()`` (which changes between processes), so
    every process, every run and every resumed run derives the same seed from the same
    parts.
    """
    mixed = 0
    for part in parts:
        mixed = (mixed * _SEED_PRIME + int(part) + 1) % _SEED_MODULUS
    return mixed


def make_generator(*parts: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded with ``derive_seed(*parts)``."""
    return torch.Generator().manual_seed(derive_seed(*parts))
