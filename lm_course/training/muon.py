"""Muon: momentum, orthogonalised, for the weight matrices; AdamW for everything else.

Adam scales each number of the gradient by its own running size. Muon (Jordan et al.,
2024) looks at a weight matrix's update as a whole: it keeps a momentum of the gradient,
``M``, and replaces it by the nearest *orthogonal* matrix, ``U V^T`` where
``M = U S V^T`` is its singular value decomposition. Every direction the update moves
in then moves by the same amount: the few directions that dominate a raw gradient no
longer drown the many small ones.

An SVD per step would be slow; a few Newton-Schulz iterations
(:func:`newton_schulz`) push every singular value of ``M`` towards 1 using only matrix
products, which is what accelerators (and CPUs) do fastest.

Muon is made for the matrices *inside* the network. Embeddings are lookup tables (one
row per token, most rows untouched in a step), the output layer maps to the vocabulary,
and gains and biases are vectors: those keep AdamW. :class:`Muon` is one optimizer that
does both, group by group (``use_muon`` in each parameter group), so the trainer, the
learning-rate schedule and the checkpoints handle it like any other optimizer: its
whole state is tensors (``momentum_buffer`` for Muon, ``step``, ``exp_avg``,
``exp_avg_sq`` for AdamW).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..checks import check_int, check_number

__all__ = ["Muon", "muon_matrices", "newton_schulz"]

# The quintic iteration's coefficients (Jordan et al., 2024): chosen so that small
# singular values grow as fast as possible, at the price of landing in roughly
# [0.7, 1.2] rather than exactly on 1 -- which works as well for training.
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """Roughly orthogonalise ``matrix`` ``(rows, cols)``: about ``U V^T`` of its SVD.

    Each iteration maps ``X`` to ``a X + b (X X^T) X + c (X X^T)^2 X``, a polynomial
    applied to every singular value at once (the singular vectors stay). Dividing by
    the norm first puts all singular values in ``(0, 1]``, where the polynomial pulls
    them towards 1. Works on the wider orientation, so ``X X^T`` is the smaller
    product. Returns a tensor of the same shape and dtype.
    """
    if matrix.dim() != 2:
        raise ValueError(
            "newton_schulz needs a matrix (rows, cols), got shape "
            f"{tuple(matrix.shape)}"
        )
    check_int("steps", steps, minimum=0)
    a, b, c = _NS_COEFFICIENTS
    tall = matrix.size(0) > matrix.size(1)
    x = matrix.T if tall else matrix
    x = x / (x.norm() + eps)  # singular values now at most 1
    for _ in range(steps):
        gram = x @ x.T  # (rows, rows): the smaller side
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def muon_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The parameters Muon should train: the weights of the hidden linear layers.

    That is every 2-D ``weight`` of an ``nn.Linear``, except a layer whose name ends in
    ``head`` (the output layer) and a weight shared with an ``nn.Embedding`` (tied
    input and output tables). Embeddings, gains and biases are left to AdamW.
    """
    tables = {
        id(p)
        for module in model.modules()
        if isinstance(module, nn.Embedding)
        for p in module.parameters()
    }
    chosen, seen = [], set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or name.split(".")[-1].endswith("head"):
            continue
        weight = module.weight
        if weight.requires_grad and id(weight) not in tables | seen:
            chosen.append(weight)
            seen.add(id(weight))
    return chosen


class Muon(torch.optim.Optimizer):
    """Muon for the groups with ``use_muon=True``, AdamW for the others.

    Args:
        params: parameter groups (dicts with ``"params"``), each with ``use_muon``
            (default False); any setting below may be given per group.
        lr: learning rate (Muon groups usually take a larger one, e.g. 0.02-0.05, as
            their update has a fixed size; AdamW groups about 1e-3).
        momentum: Muon's momentum factor.
        nesterov: use the Nesterov form of momentum (look one step ahead).
        ns_steps: Newton-Schulz iterations per update.
        betas, eps: AdamW's moving-average factors and the term that keeps its division
            finite.
        weight_decay: decoupled weight decay, ``w <- w (1 - lr * weight_decay)``.

    A Muon update of a ``(rows, cols)`` matrix has every singular value near 1, so its
    entries have a root-mean-square size of about ``1 / sqrt(max(rows, cols))``; it is
    scaled by ``sqrt(max(1, rows / cols))`` so that tall and wide matrices change at
    comparable rates (the published recipe).
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        *,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        check_number("lr", lr, minimum=0)
        check_number("momentum", momentum, minimum=0, maximum=1, strict_max=True)
        check_int("ns_steps", ns_steps, minimum=1)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            use_muon=False,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["use_muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError(
                    "Muon orthogonalises matrices: a group with use_muon=True may "
                    "hold only 2-D parameters; give vectors and other shapes to an "
                    "AdamW group (use_muon=False)"
                )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Tensor | None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = self._muon_step if group["use_muon"] else self._adamw_step
            for p in group["params"]:
                if p.grad is not None:
                    if group["weight_decay"]:
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    update(p, group, self.state[p])
        return loss

    @staticmethod
    def _muon_step(p: Tensor, group: dict[str, Any], state: dict[str, Tensor]) -> None:
        """Momentum, then its orthogonalised version as the update."""
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf, beta = state["momentum_buffer"], group["momentum"]
        buf.mul_(beta).add_(p.grad)  # M <- beta M + G
        direction = p.grad + beta * buf if group["nesterov"] else buf
        update = newton_schulz(direction, group["ns_steps"])
        scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
        p.add_(update, alpha=-group["lr"] * scale)

    @staticmethod
    def _adamw_step(p: Tensor, group: dict[str, Any], state: dict[str, Tensor]) -> None:
        """Adam: each number moves by its mean gradient over its root-mean-square."""
        if "step" not in state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        t = state["step"].item()
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(p.grad, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
        v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        # Bias correction: m and v start at zero, so early averages are too small.
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p.addcdiv_(m_hat, v_hat.sqrt().add_(group["eps"]), value=-group["lr"])
