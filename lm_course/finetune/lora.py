"""LoRA (Hu et al., 2021): fine-tune a frozen linear layer through a low-rank update.

Fine-tuning changes a pretrained weight ``W`` (``out x in``) by some ``ΔW``. LoRA's bet
is that the change a task needs has low rank, and trains it in factored form::

    y = W x + (alpha / r) · B A x          A: (r, in),  B: (out, r),  r << min(in, out)

``W`` stays frozen. ``A`` starts random and ``B`` at zero, so training starts from the
pretrained model exactly. The layer trains ``r (in + out)`` numbers instead of
``in · out``, and after training ``B A`` can be added into ``W`` once
(:meth:`LoRALinear.merged`): the fine-tuned model then runs exactly as fast as the
original, unlike adapters, which stay in the path as extra layers.

:func:`add_lora` wraps the attention's projections of every block (the query, key and
value matrix, which the course's attention keeps as one ``qkv`` layer, and the output
projection).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import check_int, check_number

__all__ = ["LoRALinear", "add_lora"]


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) · x Aᵀ Bᵀ`` with ``base`` frozen.

    Args:
        base: the pretrained :class:`torch.nn.Linear`; its parameters are frozen here.
        rank: the rank ``r`` of the update.
        alpha: the update's scale numerator; ``alpha / rank`` keeps the size of the
            update about the same when ``rank`` changes.

    ``forward``: ``(..., in_features)`` -> ``(..., out_features)``.
    """

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        check_int(
            "rank", rank, minimum=1, maximum=min(base.in_features, base.out_features)
        )
        check_number("alpha", alpha, minimum=0, strict_min=True)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **like))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        # As nn.Linear initialises its weights; B = 0 makes the update start at zero.
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        update = (x @ self.lora_a.T) @ self.lora_b.T  # through the rank-r bottleneck
        return self.base(x) + self.scale * update

    def delta(self) -> Tensor:
        """The learned change of the weight, ``(alpha / r) B A``: ``(out, in)``."""
        return self.scale * self.lora_b @ self.lora_a

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + ΔW``: the same function, no extra cost."""
        base = self.base
        out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        out = out.to(device=base.weight.device, dtype=base.weight.dtype)
        out.weight.copy_(base.weight + self.delta())
        if base.bias is not None:
            out.bias.copy_(base.bias)
        return out


def add_lora(
    trunk: nn.Module,
    rank: int = 8,
    alpha: float = 16.0,
    targets: tuple[str, ...] = ("qkv", "proj"),
) -> list[LoRALinear]:
    """Wrap the attention projections named ``targets`` of every block in LoRA.

    Args:
        trunk: a model with ``blocks`` whose ``attn`` holds the linear layers
            (:class:`~lm_course.models.encoder.TransformerEncoder`, ``GPT``); changed
            in place.
        rank, alpha: see :class:`LoRALinear`.
        targets: attribute names inside each block's attention: ``"qkv"`` (queries,
            keys and values in one matrix) and/or ``"proj"`` (the output projection).

    Returns:
        The new :class:`LoRALinear` layers; their ``lora_a`` and ``lora_b`` are what to
        train.
    """
    blocks = getattr(trunk, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise TypeError(
            f"trunk must have a ModuleList of blocks, got {type(trunk).__name__}"
        )
    if isinstance(targets, str) or not targets:
        raise TypeError(f"targets must be a non-empty tuple of names, got {targets!r}")
    layers = []
    for block in blocks:
        attn = block.attn
        for name in targets:
            base = getattr(attn, name, None)
            if isinstance(base, LoRALinear):
                raise ValueError(f"attn.{name} already has LoRA; use a fresh copy")
            if not isinstance(base, nn.Linear):
                linear = [
                    n for n, m in attn.named_children() if isinstance(m, nn.Linear)
                ]
                raise ValueError(
                    f"the attention has no linear layer {name!r}; it has {linear}"
                )
            layer = LoRALinear(base, rank, alpha)
            setattr(attn, name, layer)
            layers.append(layer)
    return layers
