"""Int8 quantisation, written out: per-channel weights, per-token activations.

A float32 weight takes 4 bytes; an int8 one takes 1. Symmetric quantisation stores a
matrix as integers ``q`` in ``[-127, 127]`` and one float ``scale`` per output channel
(row), with ``w ~ q * scale`` and ``scale = max |w_row| / 127``: a row's largest weight
becomes +-127 and the rounding error of any weight is at most ``scale / 2``. One scale
per row rather than per matrix keeps a row of small weights from losing all its
precision to one large weight elsewhere.

Two ways to use the integers (:class:`Int8Linear`):

* **weight-only** (``"weight"``): store int8, turn it back into floats for the matrix
  product. Saves memory and the bandwidth of reading weights (what limits generation on
  a GPU), not arithmetic.
* **dynamic** (``"dynamic"``, W8A8): also quantise each token's activations when they
  arrive (one scale per row of the input, computed on the fly) and multiply integers by
  integers into 32-bit sums, then rescale: ``y = (q_x @ q_w^T) * s_x * s_w^T``. Integer
  products are exact; the only errors are the two roundings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice, check_int

__all__ = [
    "MODES",
    "Int8Linear",
    "QuantizedWeight",
    "dequantize",
    "int_matmul",
    "quantize_model",
    "quantize_per_channel",
    "quantize_per_token",
    "state_bytes",
]

MODES = ("weight", "dynamic")


@dataclass
class QuantizedWeight:
    """A matrix as integers and one scale per row: ``w ~ values * scale[:, None]``.

    ``values`` ``(rows, cols)`` int8; ``scale`` ``(rows,)`` float32; ``bits`` the width
    the integers were rounded to (8 fills int8; fewer keep the same storage here, but
    show the error a smaller format would make).
    """

    values: Tensor
    scale: Tensor
    bits: int = 8


def _levels(bits: int) -> int:
    """The largest integer of a symmetric ``bits``-bit format: 127 for 8 bits."""
    return 2 ** (check_int("bits", bits, minimum=2, maximum=8) - 1) - 1


def quantize_per_channel(weight: Tensor, bits: int = 8) -> QuantizedWeight:
    """Symmetric per-row quantisation of ``weight`` ``(rows, cols)`` to ``bits``."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(
            f"weight must be a float matrix (rows, cols), got shape "
            f"{tuple(weight.shape)} and dtype {weight.dtype}"
        )
    top = _levels(bits)
    w = weight.detach().float()
    # A row of zeros gets scale 1 (any scale represents it exactly), not 0 / 0.
    scale = w.abs().amax(dim=1) / top
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(w / scale[:, None]).clamp(-top, top).to(torch.int8)
    return QuantizedWeight(values, scale, bits)


def dequantize(q: QuantizedWeight) -> Tensor:
    """The float32 matrix ``(rows, cols)`` the integers stand for."""
    return q.values.float() * q.scale[:, None]


def quantize_per_token(x: Tensor) -> tuple[Tensor, Tensor]:
    """Int8 activations: ``x`` ``(tokens, features)`` -> (int8 values, scale
    ``(tokens,)``), one symmetric scale per token, computed from ``x`` itself."""
    scale = x.detach().abs().amax(dim=-1).float() / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(x.float() / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return values, scale


def int_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for int8 ``a`` ``(m, k)``, ``b`` ``(k, n)``, summed exactly in int32.

    Uses PyTorch's int8 kernel (``torch._int_mm``) where this build and shape allow it,
    else the same product in int32 arithmetic: slower, equal to the last bit.
    """
    m, k = a.shape
    n = b.size(1)
    # The int8 kernel wants more than 16 rows and sizes in multiples of 8.
    if m > 16 and k % 8 == 0 and n % 8 == 0 and hasattr(torch, "_int_mm"):
        try:
            return torch._int_mm(a, b)
        except RuntimeError:  # no int8 kernel on this device or build
            pass
    if a.device.type == "cpu":
        return a.to(torch.int32) @ b.to(torch.int32)
    # GPUs multiply no int32 matrices; float64 holds these sums exactly (below 2**53).
    return (a.double() @ b.double()).to(torch.int32)


class Int8Linear(nn.Module):
    """A linear layer whose weight is stored as int8 (see the module docstring).

    ``forward(x (..., in_features)) -> (..., out_features)`` in float32, with the
    weight dequantised (``mode="weight"``) or with int8 activations too
    (``mode="dynamic"``).
    """

    def __init__(self, linear: nn.Linear, mode: str = "weight", bits: int = 8) -> None:
        super().__init__()
        self.mode = check_choice("mode", mode, MODES)
        q = quantize_per_channel(linear.weight, bits)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("values", q.values)  # (out, in) int8
        self.register_buffer("scale", q.scale)  # (out,) float32
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        if self.mode == "weight":
            weight = self.values.float() * self.scale[:, None]
            return F.linear(x.float(), weight, self.bias)
        rows = x.reshape(-1, self.in_features)
        q_x, s_x = quantize_per_token(rows)
        sums = int_matmul(q_x, self.values.T)  # (tokens, out) int32, exact
        y = sums.float() * s_x[:, None] * self.scale[None, :]
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, mode={self.mode!r}"


def quantize_model(
    model: nn.Module, mode: str = "weight", bits: int = 8, skip: tuple[str, ...] = ()
) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by :class:`Int8Linear`.

    Layers whose name ends in one of ``skip`` stay float. A linear layer whose weight is
    shared with another module (a tied output layer) stays float too: quantising it
    would quietly untie the pair. The original model is not changed.
    """
    check_choice("mode", mode, MODES)
    model = copy.deepcopy(model)
    counts: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        counts[id(param)] = counts.get(id(param), 0) + 1
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and not name.endswith(skip or ("\0",))
        and counts[id(module.weight)] == 1
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(module, mode, bits))
    return model


def state_bytes(model: nn.Module) -> int:
    """Bytes of the model's stored state (parameters and persistent buffers), each
    shared tensor counted once: what a checkpoint file holds."""
    seen: set[int] = set()
    total = 0
    for tensor in model.state_dict().values():
        if tensor.numel() and tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total
