"""Train/test splits of a SQuAD-style data set by article, so no context is shared."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ...checks import check_int
from ...data.loaders import QAExample

__all__ = ["split_by_article"]


def split_by_article(
    examples: Sequence[QAExample], n_test: int, seed: int = 0
) -> tuple[list[QAExample], list[QAExample]]:
    """``(train, test)``: the questions of ``n_test`` articles drawn with ``seed`` go
    to test, the rest to train; both keep the data set's order.

    Splitting by article (title) keeps every paragraph, and so every context, on one
    side: a model cannot answer a test question by remembering its paragraph.
    """
    titles = sorted({example.title for example in examples})
    check_int("n_test", n_test, minimum=1, maximum=max(len(titles) - 1, 1))
    if len(titles) < 2:
        raise ValueError(
            f"examples must come from at least 2 articles, got {len(titles)}"
        )
    test = set(random.Random(seed).sample(titles, n_test))
    return (
        [example for example in examples if example.title not in test],
        [example for example in examples if example.title in test],
    )
