"""Three ways to normalise a vector of features: the article's, LayerNorm and RMSNorm.

Each takes ``(..., d)`` and returns the same shape, normalising every vector of ``d``
features on its own (no statistics across the batch or the positions).

* :class:`L2Norm` -- article 003 §4.2.3's "layer normalization",
  ``h / (sqrt(h . h) + eps)``: divides by the vector's length. The result always has
  length 1, so each feature shrinks like ``1 / sqrt(d)``; the mean is kept and there is
  nothing to learn.
* :class:`LayerNorm` -- Ba et al. (2016): subtract the mean of the features, divide by
  their standard deviation, then a learned gain and bias. Every output vector has mean
  ``beta`` and standard deviation ``gamma`` (per feature) before the model changes them.
* :class:`RMSNorm` -- Zhang and Sennrich (2019), used by most current large models:
  LayerNorm without the centring and without the bias,
  ``g * h / sqrt(mean(h^2) + eps)``.
  Since ``sqrt(mean(h^2)) = |h| / sqrt(d)``, it is the article's formula times
  ``sqrt(d)`` times a learned gain (the ``eps`` sits in another place).

The modules are written out for reading; :class:`LayerNorm` gives what
:class:`torch.nn.LayerNorm` gives, and :class:`RMSNorm` what :class:`torch.nn.RMSNorm`
gives, to float32 precision.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lm_course.checks import check_bool, check_int, check_number, describe

__all__ = ["L2Norm", "LayerNorm", "RMSNorm", "NORMS"]


def _check_input(x: Tensor, d: int, name: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{name} input must be a floating-point tensor, got {describe(x)}"
        )
    if x.dim() == 0 or x.size(-1) != d:
        raise ValueError(
            f"{name} normalises vectors of {d} features: the input's last dimension "
            f"must be {d}, got shape {tuple(x.shape)}"
        )


class L2Norm(nn.Module):
    """Article 003 §4.2.3: ``h / (sqrt(h . h) + eps)``, a vector of length 1.

    ``(..., d)`` -> ``(..., d)``. No parameters: the article's formula has none.
    """

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.d = check_int("d", d, minimum=1)
        self.eps = check_number("eps", eps, minimum=0)

    def forward(self, h: Tensor) -> Tensor:
        """``(..., d)`` -> ``(..., d)``, each vector divided by its length."""
        _check_input(h, self.d, "L2Norm")
        length = h.pow(2).sum(dim=-1, keepdim=True).sqrt()  # (..., 1)
        return h / (length + self.eps)

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}"


class LayerNorm(nn.Module):
    """Layer normalisation: ``gamma * (h - mean) / sqrt(var + eps) + beta``.

    ``(..., d)`` -> ``(..., d)``. The mean and the (biased, divide-by-``d``) variance
    are taken over the ``d`` features of each vector. ``gamma`` starts at 1 and
    ``beta`` at 0; ``bias=False`` leaves ``beta`` out (as the course's GPT does).
    """

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.d = check_int("d", d, minimum=1)
        self.eps = check_number("eps", eps, minimum=0)
        self.gamma = nn.Parameter(torch.ones(d))
        has_bias = check_bool("bias", bias)
        self.beta = nn.Parameter(torch.zeros(d)) if has_bias else None

    def forward(self, h: Tensor) -> Tensor:
        """``(..., d)`` -> ``(..., d)``: centred, scaled to unit variance, affine."""
        _check_input(h, self.d, "LayerNorm")
        mean = h.mean(dim=-1, keepdim=True)  # (..., 1)
        var = (h - mean).pow(2).mean(dim=-1, keepdim=True)  # biased: divide by d
        out = self.gamma * (h - mean) / torch.sqrt(var + self.eps)
        return out if self.beta is None else out + self.beta

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}, bias={self.beta is not None}"


class RMSNorm(nn.Module):
    """Root-mean-square normalisation: ``g * h / sqrt(mean(h^2) + eps)``.

    ``(..., d)`` -> ``(..., d)``. No centring and no bias; the gain ``g`` starts at 1.
    """

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.d = check_int("d", d, minimum=1)
        self.eps = check_number("eps", eps, minimum=0)
        self.gain = nn.Parameter(torch.ones(d))

    def forward(self, h: Tensor) -> Tensor:
        """``(..., d)`` -> ``(..., d)``, each vector scaled to root mean square 1."""
        _check_input(h, self.d, "RMSNorm")
        rms = torch.sqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return self.gain * h / rms

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}"


#: The three, by the names the chapter uses.
NORMS: dict[str, type[nn.Module]] = {
    "l2": L2Norm,
    "layernorm": LayerNorm,
    "rmsnorm": RMSNorm,
}
