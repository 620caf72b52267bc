"""Adapters (Houlsby et al., 2019): small bottleneck layers added to a frozen trunk.

Fine-tuning every weight of a pretrained model gives one full copy of the model per
task. Houlsby et al. (article 003, §7.3, "Parameter-Efficient Transfer Learning for
NLP") instead freeze the trunk and insert an *adapter* after each sub-layer::

    h  ->  h + W_up · GELU(W_down · h)        W_down: (r, d),  W_up: (d, r),  r << d

right after the attention's output projection and after the feed-forward network,
before the residual addition. ``W_up`` starts at zero, so an adapted model starts out
computing exactly what the pretrained one did, and training moves it only as far as
the task needs. Only the adapters, the layer norms and the task's head are trained:
about ``4 d r`` numbers per block instead of ``12 d^2``.

:func:`add_adapters` inserts them by wrapping the existing sub-layers (no change to the
block's code); :func:`~lm_course.finetune.freeze.train_only` then freezes the rest.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int

__all__ = ["Adapter", "Adapted", "add_adapters"]


class Adapter(nn.Module):
    """The bottleneck ``h + W_up GELU(W_down h)``; ``(..., d_model)`` -> same shape.

    Args:
        d_model: width of the vectors it adapts.
        bottleneck: the inner width ``r``.
    """

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("bottleneck", bottleneck, minimum=1)
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        # Zero output layer: the adapter starts as the identity, the trunk unchanged.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        """``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``."""
        return h + self.up(F.gelu(self.down(h)))


class Adapted(nn.Module):
    """A sub-layer followed by an adapter: ``adapter(sublayer(*args, **kwargs))``.

    The block that owns the sub-layer calls it as before; the residual addition stays
    in the block, after the adapter, as Houlsby et al. place it.
    """

    def __init__(self, sublayer: nn.Module, adapter: Adapter) -> None:
        super().__init__()
        self.sublayer = sublayer
        self.adapter = adapter

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """Whatever the sub-layer returns ``(batch, seq, d_model)``, adapted."""
        return self.adapter(self.sublayer(*args, **kwargs))


def add_adapters(trunk: nn.Module, bottleneck: int = 16) -> list[Adapter]:
    """Insert an adapter after the attention and after the MLP of every block.

    Args:
        trunk: a model with ``blocks`` (each with ``attn`` and ``mlp``), such as
            :class:`~lm_course.models.encoder.TransformerEncoder` or
            :class:`~lm_course.models.gpt.GPT`; changed in place.
        bottleneck: the adapters' inner width ``r``.

    Returns:
        The new adapters, two per block (their parameters are what to train).
    """
    blocks = getattr(trunk, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise TypeError(
            f"trunk must have a ModuleList of blocks, got {type(trunk).__name__}"
        )
    adapters = []
    for block in blocks:
        for name in ("attn", "mlp"):
            sublayer = getattr(block, name)
            if isinstance(sublayer, Adapted):
                raise ValueError(
                    "this trunk already has adapters; add them to a fresh copy"
                )
            width = block.ln1.normalized_shape[0]
            adapter = Adapter(width, bottleneck).to(block.ln1.weight.device)
            setattr(block, name, Adapted(sublayer, adapter))
            adapters.append(adapter)
    return adapters
