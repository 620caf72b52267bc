"""Five ways to adapt a trunk to a task, set up in one call.

* ``"full"`` -- full fine-tuning (全量微调): every weight trains, from pretrained
  values;
* ``"probe"`` -- a linear probe: the trunk is frozen, only the head trains;
* ``"adapters"`` -- Houlsby adapters, layer norms and the head train;
* ``"lora"`` -- LoRA on the attention projections, and the head, train;
* ``"scratch"`` -- the same network trained from random numbers (the control that
  tells what pretraining added).

:func:`setup` copies the trunk first, so that one pretrained trunk serves every method.
"""

from __future__ import annotations

import copy

import torch

from ..checks import check_choice
from ..models.encoder import TransformerEncoder
from ..models.gpt import GPT
from ..training import TrainConfig, seed_torch
from .adapters import add_adapters
from .freeze import layer_norms, train_only
from .heads import Classifier
from .lora import add_lora

__all__ = ["METHODS", "setup"]

METHODS = ("full", "probe", "adapters", "lora", "scratch")


def setup(
    trunk: TransformerEncoder | GPT,
    method: str,
    n_classes: int = 2,
    *,
    pooling: str = "mean",
    dropout: float = 0.1,
    bottleneck: int = 16,
    rank: int = 8,
    seed: int = 0,
) -> Classifier:
    """A :class:`Classifier` on a copy of ``trunk``; ``method`` decides what trains.

    Args:
        trunk: the pretrained trunk (left unchanged).
        method: one of :data:`METHODS`.
        n_classes, pooling, dropout: see :class:`Classifier`.
        bottleneck: the adapters' inner width (``"adapters"``).
        rank: LoRA's rank (``"lora"``; ``alpha = 2 * rank``).
        seed: seeds the new numbers (head, adapters, LoRA, or the whole scratch model)
            without touching the caller's random state.

    Returns:
        The classifier in training mode; its ``requires_grad`` flags say what trains.
    """
    check_choice("method", method, METHODS)
    if not isinstance(trunk, TransformerEncoder | GPT):
        raise TypeError(
            f"trunk must be a TransformerEncoder or a GPT, got {type(trunk).__name__}"
        )
    with torch.random.fork_rng(devices=[]):
        seed_torch(seed, torch.device("cpu"))
        copied = copy.deepcopy(trunk)
        if method == "scratch":
            copied = type(trunk)(trunk.config).to(next(trunk.parameters()).device)
        model = Classifier(copied, n_classes, pooling=pooling, dropout=dropout)
        model.head.to(next(trunk.parameters()).device)
        if method == "probe":
            train_only(model, model.head)
        elif method == "adapters":
            adapters = add_adapters(model.trunk, bottleneck)
            train_only(model, *adapters, *layer_norms(model), model.head)
        elif method == "lora":
            layers = add_lora(model.trunk, rank=rank, alpha=2.0 * rank)
            train_only(model, *layers, model.head)
            for layer in layers:  # the frozen base stays frozen
                layer.base.requires_grad_(False)
    return model.train()


def fine_tuning_config(
    steps: int, lr: float, device: str | torch.device, seed: int
) -> TrainConfig:
    """The course's fine-tuning schedule: ``steps`` steps of AdamW at ``lr``.

    A tenth of the steps warm up, weight decay is light (0.01) and nothing is
    evaluated during training: each task scores its model afterwards.
    """
    return TrainConfig(
        max_steps=steps,
        lr=lr,
        warmup_steps=steps // 10,
        eval_batches=0,
        log_every=10,
        weight_decay=0.01,
        device=str(device),
        seed=seed,
    )
