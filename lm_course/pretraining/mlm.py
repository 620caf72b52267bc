"""Masked language modelling (BERT): masked windows of a stream, and their loss.

An encoder sees the whole window in both directions, so it cannot be asked for the next
token; BERT hides about 15 % of the tokens instead (:func:`mask_tokens`, with its
80/10/10 rule, lives beside the encoder in :mod:`lm_course.models.encoder`) and asks the
model to recover them. Only the chosen positions carry a target, so one window teaches
an encoder less than it teaches a causal model, which predicts every position.

:func:`mlm_loss` computes the vocabulary scores only at the chosen positions: the same
loss as ``TransformerEncoder.forward``, without scoring the 85 % of positions that are
thrown away (the output layer is the largest matrix product of a small model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_number, check_targets
from ..models.encoder import IGNORE_INDEX, TransformerEncoder, mask_tokens
from ..training import LMBatches
from .vocab import Vocab

__all__ = ["IGNORE_INDEX", "MLMBatches", "mask_tokens", "mlm_loss"]


class MLMBatches:
    """``get_batch(split, generator) -> (inputs, targets)`` of masked random windows.

    Args:
        splits: split name -> packed stream ``(n_tokens,)`` (see
            :func:`~lm_course.pretraining.streams.pack_documents`).
        block_size: tokens per window.
        batch_size: windows per batch.
        vocab: gives the ``mask`` id and the special ids that are never masked.
        prob: share of tokens chosen as targets (BERT: 0.15).

    Both tensors are ``(batch_size, block_size)`` long; ``targets`` is ``-100`` at
    positions that were not chosen. The windows and the masks come from ``generator``
    only, so an evaluation batch is the same every time.
    """

    def __init__(
        self,
        splits: Mapping[str, Tensor | Sequence[int]],
        block_size: int,
        batch_size: int,
        vocab: Vocab,
        prob: float = 0.15,
    ) -> None:
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab, got {type(vocab).__name__}")
        self.windows = LMBatches(splits, block_size, batch_size)
        self.vocab = vocab
        self.prob = check_number(
            "prob", prob, minimum=0, maximum=1, strict_min=True, hint="; BERT uses 0.15"
        )

    def __call__(self, split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One batch ``(inputs, targets)``, each ``(batch_size, block_size)``."""
        x, _ = self.windows(split, generator)
        v = self.vocab
        return mask_tokens(x, v.mask, len(v), v.special_ids, self.prob, generator)


def mlm_loss(encoder: TransformerEncoder, batch: tuple[Tensor, ...]) -> Tensor:
    """Mean cross-entropy at the masked positions of ``batch = (inputs, targets)``.

    Shapes: ``inputs`` and ``targets`` ``(batch, seq)``; an optional third tensor is
    the attention mask ``(batch, seq)``. Equal to ``encoder(inputs, targets)[1]``, but
    the output layer runs on the chosen positions only. Usable as the trainer's
    ``loss_fn``.
    """
    if not isinstance(encoder, TransformerEncoder):
        raise TypeError(
            f"encoder must be a TransformerEncoder, got {type(encoder).__name__}"
        )
    inputs, targets, *rest = batch
    check_targets(targets, tuple(inputs.shape), encoder.config.vocab_size, "targets")
    hidden = encoder.encode(inputs, rest[0] if rest else None)  # (batch, seq, d)
    chosen = targets != IGNORE_INDEX
    if not bool(chosen.any()):
        raise ValueError("no position is masked in this batch: nothing to predict")
    logits = F.linear(hidden[chosen], encoder.tok_emb.weight, encoder.mlm_bias)
    return F.cross_entropy(logits, targets[chosen])  # (n_chosen, vocab) scores
