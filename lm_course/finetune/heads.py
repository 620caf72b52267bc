"""A classification head on a pretrained trunk: pool the vectors, one linear layer.

Pretraining leaves a *trunk* (主干) that turns ids into one vector per position.
Fine-tuning for classification adds what pretraining never had: a head (任务头) that
pools those vectors into one per sentence and maps it to class scores. The head is the
only part that starts from random numbers; everything below it starts pretrained.

Pooling, for a sentence of real tokens ``1..n`` (padding excluded):

* ``"mean"``: the average of the ``n`` vectors -- works for any trunk;
* ``"first"``: the vector of the first token (BERT's ``[CLS]``): in an encoder it has
  attended to the whole sentence; in a causal model it has seen only itself;
* ``"last"``: the vector of the last real token: in a causal model (GPT) the only one
  that has read the whole sentence.

The trunk may be a :class:`~lm_course.models.encoder.TransformerEncoder` or a
:class:`~lm_course.models.gpt.GPT` (padding on the right, which a causal model's real
tokens never attend to).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice, check_int, check_number, check_targets, describe
from ..models.encoder import TransformerEncoder
from ..models.gpt import GPT

__all__ = ["POOLINGS", "Classifier", "pool"]

POOLINGS = ("mean", "first", "last")


def pool(hidden: Tensor, keep: Tensor, how: str = "mean") -> Tensor:
    """One vector per row: ``hidden`` ``(batch, seq, d)``, ``keep`` ``(batch, seq)``.

    ``keep`` is True (or 1) at real tokens; every row must have one, at the start (the
    padding on the right). Returns ``(batch, d)``.
    """
    check_choice("how", how, POOLINGS)
    if how == "first":
        return hidden[:, 0]
    weights = keep.to(hidden.dtype)  # (batch, seq)
    if how == "last":
        last = weights.sum(1).long().clamp(min=1) - 1  # (batch,)
        rows = torch.arange(hidden.size(0), device=hidden.device)
        return hidden[rows, last]
    weights = weights.unsqueeze(-1)  # (batch, seq, 1)
    # where, not a product: 0 * (a NaN or inf in a padding vector) would still be NaN.
    summed = torch.where(weights > 0, hidden, 0.0).sum(1)
    return summed / weights.sum(1).clamp(min=1.0)


class Classifier(nn.Module):
    """``trunk`` -> pooled vector -> dropout -> ``Linear(d_model, n_classes)``.

    Args:
        trunk: a (pretrained) ``TransformerEncoder`` or ``GPT``.
        n_classes: number of labels.
        pooling: ``"mean"``, ``"first"`` or ``"last"`` (see the module docstring).
        dropout: dropout on the pooled vector.

    ``forward(idx (batch, seq), attention_mask (batch, seq), labels (batch,) = None)``
    returns ``(logits (batch, n_classes), loss or None)``.
    """

    def __init__(
        self,
        trunk: TransformerEncoder | GPT,
        n_classes: int,
        pooling: str = "mean",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not isinstance(trunk, TransformerEncoder | GPT):
            raise TypeError(
                f"trunk must be a TransformerEncoder or a GPT, got {describe(trunk)}"
            )
        self.trunk = trunk
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.dropout = check_number(
            "dropout", dropout, minimum=0, maximum=1, strict_max=True
        )
        self.head = nn.Linear(trunk.config.d_model, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def features(self, idx: Tensor, attention_mask: Tensor) -> Tensor:
        """The pooled trunk vectors ``(batch, d_model)`` the head reads."""
        if isinstance(self.trunk, GPT):
            if attention_mask.shape != idx.shape:
                raise ValueError(
                    f"attention_mask must have the shape of idx {tuple(idx.shape)}, "
                    f"got {tuple(attention_mask.shape)}"
                )
            hidden = self.trunk.encode(idx)
        else:
            hidden = self.trunk.encode(idx, attention_mask)
        return pool(hidden, attention_mask, self.pooling)

    def forward(
        self, idx: Tensor, attention_mask: Tensor, labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Class logits ``(batch, n_classes)``, and the loss for ``labels (batch,)``."""
        if labels is not None:
            check_targets(labels, (idx.size(0),), self.n_classes, "labels")
        pooled = self.features(idx, attention_mask)
        logits = self.head(F.dropout(pooled, p=self.dropout, training=self.training))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss
