"""Magnitude pruning: set the smallest weights to zero.

The simplest pruning rule (Han et al., 2015): a weight near zero contributes little, so
zero out the fraction ``sparsity`` of weights with the smallest absolute values. The
threshold can be one for all matrices (``scope="global"``: layers with many small
weights lose more) or one per matrix (``"layer"``: each loses the same fraction).

The zeros are *unstructured*: scattered anywhere in the matrix. A dense matrix product
multiplies them all the same, so the model is exactly as slow as before; only a sparse
format (which stores positions too) or hardware that skips zeros in fixed patterns
(2:4 sparsity) turns them into speed, and on a CPU a sparse format wins only when
almost everything is zero.

Which weights are pruned: those of the ``nn.Linear`` layers inside the network (the
same matrices :func:`~lm_course.training.muon.muon_matrices` selects). Embeddings and
the output layer are lookup tables and stay whole.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_choice, check_number
from ..training.muon import muon_matrices

__all__ = ["SCOPES", "magnitude_masks", "prunable_weights", "apply_masks", "sparsity"]

SCOPES = ("global", "layer")


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """``{name: weight}`` of the hidden linear layers' matrices, in model order."""
    chosen = {id(p) for p in muon_matrices(model)}
    return {name: p for name, p in model.named_parameters() if id(p) in chosen}


def magnitude_masks(
    model: nn.Module, sparsity: float, scope: str = "global"
) -> dict[str, Tensor]:
    """Boolean masks (True = keep) that zero the ``sparsity`` smallest-magnitude
    weights of :func:`prunable_weights`, each mask shaped like its weight.

    Ties at the threshold are broken by position, so exactly
    ``round(sparsity * n)`` weights are pruned.
    """
    check_number("sparsity", sparsity, minimum=0, maximum=1)
    check_choice("scope", scope, SCOPES)
    weights = prunable_weights(model)
    if not weights:
        raise ValueError("the model has no hidden nn.Linear weights to prune")
    if scope == "layer":
        return {
            name: _keep_largest(w.detach(), sparsity) for name, w in weights.items()
        }
    flat = torch.cat([w.detach().reshape(-1) for w in weights.values()])
    keep = _keep_largest(flat, sparsity)
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start : start + w.numel()].reshape(w.shape)
        start += w.numel()
    return masks


def _keep_largest(values: Tensor, sparsity: float) -> Tensor:
    """True for all but the ``round(sparsity * n)`` entries of smallest magnitude."""
    n_pruned = round(sparsity * values.numel())
    keep = torch.ones(values.numel(), dtype=torch.bool, device=values.device)
    if n_pruned:
        # A stable sort breaks ties by position: the same masks on every run.
        order = torch.sort(values.abs().reshape(-1), stable=True).indices
        keep[order[:n_pruned]] = False
    return keep.reshape(values.shape)


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> nn.Module:
    """Zero the pruned weights of ``model`` in place; returns the model."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params or params[name].shape != mask.shape:
            raise ValueError(
                f"mask {name!r} does not fit the model: made for another model?"
            )
        params[name].mul_(mask.to(params[name].dtype))
    return model


def sparsity(model: nn.Module) -> float:
    """The fraction of zeros among the prunable weights."""
    weights = list(prunable_weights(model).values())
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)
