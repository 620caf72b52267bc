"""From start and end logits to an answer: the best span, then its text.

The best span maximises ``start_logit[i] + end_logit[j]`` over ``i <= j`` with at most
``max_answer`` pieces (``j - i < max_answer``), both inside the context (BERT's rule,
Devlin, 2019). A question whose context needed several windows takes the best span of
all its windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...checks import check_int, describe
from ...data.loaders import QAExample
from ...pretraining.vocab import Vocab
from .features import Window
from .head import pad_windows

__all__ = ["best_spans", "predict"]


def best_spans(
    start_logits: Tensor, end_logits: Tensor, allowed: Tensor, max_answer: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The highest-scoring allowed span of each row.

    Args:
        start_logits, end_logits: ``(batch, seq)`` floats.
        allowed: ``(batch, seq)`` bool, True where a span may start or end.
        max_answer: the most pieces a span may have (>= 1).

    Returns:
        ``(starts, ends, scores)``, each ``(batch,)``; a row with no allowed position
        gets ``(0, 0, -inf)``.
    """
    check_int("max_answer", max_answer, minimum=1)
    for name, tensor in (("start_logits", start_logits), ("end_logits", end_logits)):
        if not isinstance(tensor, Tensor) or tensor.dim() != 2:
            raise ValueError(
                f"{name} must be a (batch, seq) tensor, got {describe(tensor)}"
            )
    if end_logits.shape != start_logits.shape or allowed.shape != start_logits.shape:
        raise ValueError(
            "start_logits, end_logits and allowed must have one shape, got "
            f"{tuple(start_logits.shape)}, {tuple(end_logits.shape)}, "
            f"{tuple(allowed.shape)}"
        )
    seq = start_logits.size(1)
    i = torch.arange(seq).view(seq, 1)
    j = torch.arange(seq).view(1, seq)
    band = (j >= i) & (j - i < max_answer)  # (seq, seq): start i, end j
    ok = band & allowed.bool()[:, :, None] & allowed.bool()[:, None, :]
    scores = start_logits.float()[:, :, None] + end_logits.float()[:, None, :]
    scores = scores.masked_fill(~ok, float("-inf")).flatten(1)
    best, flat = scores.max(-1)
    starts, ends = flat // seq, flat % seq
    none = torch.isinf(best)
    return starts.masked_fill(none, 0), ends.masked_fill(none, 0), best


@torch.no_grad()
def predict(
    model: nn.Module,
    vocab: Vocab,
    examples: Sequence[QAExample],
    rows: Sequence[Window],
    max_answer: int = 30,
    batch_size: int = 64,
) -> list[str]:
    """The answer text of each example (``""`` when no window allows a span).

    ``rows`` are the windows of ``examples`` (:func:`~.features.windows`); ``model``
    maps ``(ids, keep)`` to start and end logits ``(batch, seq)``.
    """
    check_int("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    best: dict[int, tuple[float, str]] = {}
    try:
        for begin in range(0, len(rows), batch_size):
            chunk = rows[begin : begin + batch_size]
            ids, keep = pad_windows(vocab, chunk)
            start, end = model(ids.to(device), keep.to(device))
            allowed = torch.zeros(ids.shape, dtype=torch.bool)
            for r, row in enumerate(chunk):
                allowed[r, : len(row.spans)] = torch.tensor(
                    [span is not None for span in row.spans]
                )
            starts, ends, scores = best_spans(
                start.cpu(), end.cpu(), allowed, max_answer
            )
            for r, row in enumerate(chunk):
                score = scores[r].item()
                if score == float("-inf"):
                    continue
                first = row.spans[int(starts[r])]
                last = row.spans[int(ends[r])]
                assert first is not None and last is not None  # allowed positions only
                text = examples[row.example].context[first[0] : last[1]]
                if row.example not in best or score > best[row.example][0]:
                    best[row.example] = (score, text)
    finally:
        model.train(was_training)
    return [best.get(i, (0.0, ""))[1] for i in range(len(examples))]
