"""Magnitude pruning: exact sparsities, the smallest weights go first, per-layer and
global thresholds, embeddings untouched."""

from __future__ import annotations

import pytest
import torch

from lm_course.compression import (
    apply_masks,
    magnitude_masks,
    prunable_weights,
    sparsity,
)
from lm_course.models.gpt import GPT, GPTConfig


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, d_model=32))


def test_only_hidden_matrices_are_prunable() -> None:
    names = list(prunable_weights(_model()))
    assert len(names) == 8 and all(".attn." in n or ".mlp." in n for n in names)


@pytest.mark.parametrize("level", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_global_pruning_hits_the_sparsity_and_removes_the_smallest(
    level: float,
) -> None:
    model = _model()
    weights = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    masks = magnitude_masks(model, level)
    apply_masks(model, masks)
    total = sum(w.numel() for w in weights.values())
    assert sparsity(model) == pytest.approx(round(level * total) / total)
    pruned = torch.cat([weights[n][~m].abs() for n, m in masks.items()])
    kept = torch.cat([weights[n][m].abs() for n, m in masks.items()])
    if len(pruned) and len(kept):
        assert pruned.max() <= kept.min()
    emb = model.tok_emb.weight
    assert (emb != 0).all()  # the embedding is never pruned


def test_layer_scope_prunes_each_matrix_equally_global_does_not() -> None:
    model = _model()
    with torch.no_grad():  # one matrix of much smaller weights
        model.blocks[0].mlp.fc.weight.mul_(0.01)
    per_layer = magnitude_masks(model, 0.5, scope="layer")
    for mask in per_layer.values():
        assert (~mask).float().mean() == pytest.approx(0.5, abs=1e-3)
    global_ = magnitude_masks(model, 0.5, scope="global")
    assert (~global_["blocks.0.mlp.fc.weight"]).all()  # all of the small layer goes


def test_masks_are_checked_and_values_too() -> None:
    model = _model()
    with pytest.raises(ValueError, match="sparsity must be a finite number"):
        magnitude_masks(model, 1.5)
    with pytest.raises(ValueError, match="scope must be one of"):
        magnitude_masks(model, 0.5, scope="row")
    with pytest.raises(ValueError, match="does not fit the model"):
        apply_masks(
            model, {"blocks.0.mlp.fc.weight": torch.ones(3, 3, dtype=torch.bool)}
        )


def test_ties_are_broken_the_same_way_every_time() -> None:
    model = _model()
    with torch.no_grad():
        for w in prunable_weights(model).values():
            w.copy_(torch.sign(w))  # every magnitude equal: all ties
    first = magnitude_masks(model, 0.25)
    second = magnitude_masks(model, 0.25)
    assert all(torch.equal(first[n], second[n]) for n in first)
    assert sum(int((~m).sum()) for m in first.values()) == round(
        0.25 * sum(m.numel() for m in first.values())
    )
