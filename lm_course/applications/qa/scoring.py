"""Exact match (精确匹配) and F1 with the official SQuAD v1.1 definitions.

Both compare *normalised* answers: lowercased, punctuation and the articles a, an, the
removed, spaces collapsed (Rajpurkar, 2016). Exact match is 100 when the prediction
equals one of the reference answers, F1 the harmonic mean of precision and recall of
their shared words; each question takes its best reference, and both are averaged over
the questions, in percent. The computation is torchmetrics' implementation of the
official script, not a copy.

Chinese has no spaces between words, so a Chinese answer would count as one "word";
``chars=True`` puts a space between characters first, making F1 a character overlap
(as the CMRC 2018 and MLQA evaluations do).
"""

from __future__ import annotations

from collections.abc import Sequence

from torchmetrics.functional.text import squad

from ...checks import check_bool, describe
from ...data.loaders import QAExample

__all__ = ["spaced", "squad_scores"]


def spaced(text: str) -> str:
    """``text`` with a space between every two non-space characters."""
    return " ".join(text.replace(" ", ""))


def squad_scores(
    predictions: Sequence[str], examples: Sequence[QAExample], chars: bool = False
) -> dict[str, float]:
    """``{"exact_match": ..., "f1": ...}`` in percent over ``examples``.

    ``predictions[i]`` answers ``examples[i]``.
    """
    check_bool("chars", chars)
    if len(predictions) != len(examples) or not examples:
        raise ValueError(
            "predictions must have one answer per example (and there must be at least "
            f"one), got {len(predictions)} predictions for {len(examples)} examples"
        )
    fix = spaced if chars else str
    preds, target = [], []
    for i, (text, example) in enumerate(zip(predictions, examples, strict=True)):
        if not isinstance(text, str):
            raise TypeError(f"predictions[{i}] must be a str, got {describe(text)}")
        key = str(i)  # ids need not be unique across data sets
        preds.append({"prediction_text": fix(text), "id": key})
        answers = {
            "text": [fix(a) for a in example.answers],
            "answer_start": list(example.answer_starts),
        }
        target.append({"answers": answers, "id": key})
    scores = squad(preds, target)
    return {name: round(float(value), 4) for name, value in scores.items()}
