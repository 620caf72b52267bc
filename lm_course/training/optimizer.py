"""The optimizer and its learning rate: AdamW in two parameter groups, set each step.

``TrainConfig.optimizer="muon"`` builds :class:`~.muon.Muon` instead: Muon for the
hidden weight matrices, AdamW for the rest. The schedule itself is a pure function (see
:mod:`.schedule`); this module builds the optimizer and applies the rate the schedule
gives for a step.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from .config import TrainConfig
from .muon import Muon, muon_matrices


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW with two parameter groups: decayed (dim >= 2) and not decayed (dim < 2).

    Weight decay pulls weights towards zero; that regularises matrices and embeddings,
    but for biases and normalisation gains (vectors) it only hurts. Where this PyTorch
    has a fused kernel for the device (CUDA; the CPU since PyTorch 2.4) it updates all
    parameters in one pass (on a small model's CPU step about 5x faster than
    ``foreach``); elsewhere the ``foreach`` implementation batches them. Both compute
    the same update.

    With ``config.optimizer == "muon"`` the hidden weight matrices
    (:func:`~.muon.muon_matrices`) form a third group trained by Muon at
    ``config.muon_lr``; the schedule scales it like the others (``lr_scale``).
    """
    matrices = muon_matrices(model) if config.optimizer == "muon" else []
    in_muon = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in in_muon]
    decay = [p for p in rest if p.dim() >= 2]
    no_decay = [p for p in rest if p.dim() < 2]
    groups = [
        {"params": params, "weight_decay": wd}
        for params, wd in [(decay, config.weight_decay), (no_decay, 0.0)]
        if params
    ]
    if not groups and not matrices:
        raise ValueError(
            "the model has no trainable parameters (all have requires_grad=False)"
        )
    settings = {"lr": config.lr, "betas": config.betas}
    if matrices:
        muon_group = {
            "params": matrices,
            "use_muon": True,
            "lr": config.muon_lr,
            "lr_scale": config.muon_lr / config.lr,
            "momentum": config.muon_momentum,
            "weight_decay": config.muon_weight_decay,
        }
        return Muon([muon_group, *groups], **settings)  # AdamW written out inside
    if fused_adamw_available(device.type):
        return torch.optim.AdamW(groups, fused=True, **settings)
    return torch.optim.AdamW(groups, foreach=True, **settings)


@functools.cache
def fused_adamw_available(device_type: str) -> bool:
    """Whether this PyTorch has a fused AdamW kernel for ``device_type``.

    Found by trying one step on a one-number parameter: PyTorch 2.2 and 2.3 accept
    ``fused=True`` for CPU parameters but fail at the first step, and other devices
    (such as ``"meta"``) are refused when the optimizer is built.
    """
    if device_type not in ("cuda", "cpu"):
        return False
    param = torch.zeros(1, device=device_type, requires_grad=True)
    param.grad = torch.zeros_like(param)
    try:
        torch.optim.AdamW([param], fused=True).step()
    except (RuntimeError, NotImplementedError):
        return False
    return True


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the rate ``lr`` for the next step.

    A group with an ``lr_scale`` (Muon's matrices) gets ``lr * lr_scale``: the same
    warmup and decay, from its own peak.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
