"""Which weights train, how many there are, and how far training moved them.

Full fine-tuning trains every weight; a linear probe (线性探测) trains the head alone;
adapters and LoRA train small added pieces. :func:`train_only` sets that up (the
course's optimizer takes only parameters with ``requires_grad``),
:func:`count_parameters` counts the share that trains, and :func:`relative_change`
measures, group by group, how far a run moved the weights it was allowed to move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from ..checks import describe

__all__ = [
    "count_parameters",
    "layer_group",
    "layer_norms",
    "relative_change",
    "snapshot",
    "train_only",
]


def train_only(model: nn.Module, *parts: nn.Module | nn.Parameter) -> nn.Module:
    """Freeze every parameter of ``model``, then unfreeze those of ``parts``.

    ``parts`` are sub-modules (a head, adapters, layer norms) or single parameters.
    Returns ``model`` (changed in place).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    model.requires_grad_(False)
    for part in parts:
        if isinstance(part, nn.Parameter | nn.Module):
            part.requires_grad_(True)
        else:
            raise TypeError(
                f"parts must be modules or parameters, got {describe(part)}"
            )
    return model


def layer_norms(model: nn.Module) -> list[nn.Module]:
    """Every LayerNorm of ``model`` (Houlsby et al. train them along with adapters)."""
    return [m for m in model.modules() if isinstance(m, nn.LayerNorm)]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers in ``model``; a shared tensor counts once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    params = list(model.parameters())  # parameters() yields a shared tensor once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, total


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    """Detached copies of every parameter, by name, to compare with later."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def layer_group(name: str) -> str:
    """A readable group for a parameter name: ``"embeddings"``, ``"block 2"``, ...

    Wrappers' prefixes (``trunk.``, ``encoder.``) are dropped; positions and tokens are
    ``"embeddings"``; ``blocks.i`` is ``"block i"``; everything else keeps its first
    name (``"head"``, ``"ln_f"``, ``"mlm_bias"``).
    """
    parts = name.split(".")
    while parts and parts[0] in ("trunk", "encoder", "base", "module"):
        parts = parts[1:]
    if not parts:
        return name
    if parts[0] in ("tok_emb", "pos_emb"):
        return "embeddings"
    if parts[0] == "blocks" and len(parts) > 1:
        return f"block {parts[1]}"
    return parts[0]


def relative_change(
    before: dict[str, Tensor],
    model: nn.Module,
    group: Callable[[str], str] = layer_group,
) -> dict[str, float]:
    """``||W_after - W_before|| / ||W_before||`` per group, in parameter order.

    Args:
        before: a :func:`snapshot` taken before training.
        model: the same model after training (parameters missing from ``before``, such
            as a new head, are left out).
        group: maps a parameter name to its group (default :func:`layer_group`).

    Returns:
        ``{group: relative change}``: 0 for frozen groups, about 1 or more for weights
        trained from random numbers, small for fine-tuned ones.
    """
    diff: dict[str, float] = {}
    norm: dict[str, float] = {}
    for name, p in _named(model):
        if name not in before:
            continue
        old = before[name].to(p.device, torch.float64)
        key = group(name)
        diff[key] = diff.get(key, 0.0) + float(
            (p.detach().double() - old).square().sum()
        )
        norm[key] = norm.get(key, 0.0) + float(old.square().sum())
    return {k: (diff[k] / norm[k]) ** 0.5 if norm[k] > 0 else 0.0 for k in diff}


def _named(model: nn.Module) -> Iterable[tuple[str, Tensor]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    return model.named_parameters()
