"""Knowledge distillation: a small student learns from a large teacher's predictions.

The data says only which character came next. A trained teacher says more: for every
position, a whole distribution over the next character ("probably 'e', maybe 'a', never
'Q'"). Hinton et al. (2015) train the student to match that distribution, softened by a
temperature ``T`` (dividing logits by ``T > 1`` lifts the small probabilities, which
carry most of the extra information), mixed with the usual cross-entropy on the data::

    loss = alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, y)

The ``T^2`` keeps the soft term's gradients the same size whatever the temperature
(they shrink as ``1/T^2`` otherwise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_number
from ..training.evaluation import Batch, default_loss

__all__ = ["DistillationLoss", "distillation_loss"]


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    ignore_index: int = -100,
) -> Tensor:
    """The mixed loss above, averaged over the positions whose target is not ignored.

    Args:
        student_logits, teacher_logits: ``(..., vocab)``, the same shape.
        targets: ``(...)`` token ids; positions equal to ``ignore_index`` count in
            neither term.
        temperature: ``T``, at least 1 in practice.
        alpha: weight of the teacher's term; 0 is plain cross-entropy.

    Returns:
        A scalar tensor.
    """
    check_number("temperature", temperature, minimum=0, strict_min=True)
    check_number("alpha", alpha, minimum=0, maximum=1)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ: the two models need the same "
            "vocabulary and the same inputs"
        )
    vocab = student_logits.size(-1)
    s = student_logits.reshape(-1, vocab).float()
    t = teacher_logits.reshape(-1, vocab).float().detach()
    y = targets.reshape(-1)
    keep = y != ignore_index
    hard = F.cross_entropy(s, y, ignore_index=ignore_index)
    log_p_student = F.log_softmax(s[keep] / temperature, dim=-1)
    log_p_teacher = F.log_softmax(t[keep] / temperature, dim=-1)
    # KL(teacher || student) per position, summed over the vocabulary.
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1).mean()
    return alpha * temperature**2 * kl + (1 - alpha) * hard


class DistillationLoss:
    """A ``loss_fn(model, batch)`` for the trainer: the student's distillation loss.

    The teacher (frozen, in eval mode) runs on the same batch ``(x, y)`` without a
    graph. When the student is in eval mode -- the trainer's evaluations -- it returns
    the plain cross-entropy instead, so a distilled student's validation loss compares
    directly with one trained alone.
    """

    def __init__(
        self, teacher: nn.Module, temperature: float = 2.0, alpha: float = 0.5
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature = check_number(
            "temperature", temperature, minimum=0, strict_min=True
        )
        self.alpha = check_number("alpha", alpha, minimum=0, maximum=1)

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        """``batch`` = ``(x, y)``, both ``(batch, seq)``; returns a scalar."""
        if not model.training:
            return default_loss(model, batch)
        x, y = batch
        with torch.no_grad():
            teacher_logits = self.teacher(x)[0]
        student_logits = model(x)[0]
        return distillation_loss(
            student_logits,
            teacher_logits,
            y,
            temperature=self.temperature,
            alpha=self.alpha,
        )
