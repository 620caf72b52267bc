"""Logistic regression: the bag-of-words baseline and the linear probe.

Two linear classifiers a fine-tuned Transformer has to beat to be worth its cost:

* **bag of words** (词袋): which words and word pairs a sentence contains, nothing
  about their order beyond pairs; :class:`BagOfWords` turns a sentence into the ids of
  its features, and an ``EmbeddingBag`` summing one weight per feature *is* logistic
  regression on the 0/1 feature vector, without ever building that vector;
* **linear probe** (线性探测): a frozen pretrained trunk's pooled vectors, and one
  linear layer on top -- how much of the task the pretrained features already hold.

Both are fitted to convergence, full batch, with L-BFGS and an L2 penalty, the way the
standard baselines are, so the comparison is fair to them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int, check_number, describe

__all__ = ["BagOfWords", "LogisticRegression", "fit_logistic_regression"]

_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


class BagOfWords:
    """Lowercased words and adjacent word pairs seen ``min_count`` times in training.

    Args:
        texts: the training sentences (the features are read from them only).
        min_count: keep features seen at least this often.
        bigrams: add adjacent word pairs ("not good") as features.
    """

    def __init__(
        self, texts: Sequence[str], min_count: int = 2, bigrams: bool = True
    ) -> None:
        check_int("min_count", min_count, minimum=1)
        self.bigrams = bool(bigrams)
        counts = Counter(f for text in texts for f in set(self._features(text)))
        kept = sorted(f for f, n in counts.items() if n >= min_count)
        self.index = {f: i for i, f in enumerate(kept)}

    def __len__(self) -> int:
        return len(self.index)

    def _features(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"texts must hold strings, got {describe(text)}")
        words = _WORD.findall(text.lower())
        pairs = [f"{a} {b}" for a, b in zip(words, words[1:])] if self.bigrams else []
        return words + pairs

    def bags(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``(ids, offsets)`` for ``nn.EmbeddingBag``: each text's distinct features.

        ``ids`` ``(n_features_total,)`` long; ``offsets`` ``(len(texts),)`` long, where
        each text's ids start. Unknown features are dropped.
        """
        ids: list[int] = []
        offsets: list[int] = []
        for text in texts:
            offsets.append(len(ids))
            found = {self.index[f] for f in self._features(text) if f in self.index}
            ids.extend(sorted(found))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets)


class LogisticRegression(nn.Module):
    """``softmax(W x + b)`` on dense features ``(n, d)`` or on bags of feature ids.

    ``n_features``: width of the dense input, or the number of distinct feature ids.
    ``bags=True`` reads ``(ids, offsets)`` as made by :meth:`BagOfWords.bags`.
    """

    def __init__(self, n_features: int, n_classes: int, bags: bool = False) -> None:
        super().__init__()
        check_int("n_features", n_features, minimum=1)
        check_int("n_classes", n_classes, minimum=2)
        self.bags = bool(bags)
        if self.bags:
            self.weight = nn.EmbeddingBag(n_features, n_classes, mode="sum")
            nn.init.zeros_(self.weight.weight)
        else:
            self.weight = nn.Linear(n_features, n_classes, bias=False)
            nn.init.zeros_(self.weight.weight)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, x: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        """Logits ``(n, n_classes)``."""
        if self.bags:
            ids, offsets = x
            return self.weight(ids, offsets) + self.bias
        return self.weight(x) + self.bias

    def l2(self) -> Tensor:
        """Sum of squared weights (the bias is not penalised)."""
        w = self.weight.weight
        return w.square().sum()


def fit_logistic_regression(
    x: Tensor | tuple[Tensor, Tensor],
    labels: Tensor,
    n_features: int,
    *,
    l2: float = 1e-3,
    n_classes: int = 2,
    max_iter: int = 200,
) -> LogisticRegression:
    """Fit by L-BFGS: mean cross-entropy plus ``l2 * ||W||^2``.

    Args:
        x: dense features ``(n, n_features)`` float, or ``(ids, offsets)`` bags.
        labels: ``(n,)`` long class ids.
        n_features: see :class:`LogisticRegression`.
        l2: strength of the penalty (larger: smaller weights, less overfitting).
        n_classes: number of classes.
        max_iter: L-BFGS iterations.

    Returns:
        The fitted model (in eval mode).
    """
    check_number("l2", l2, minimum=0)
    check_int("max_iter", max_iter, minimum=1)
    bags = isinstance(x, tuple)
    if not bags and (not isinstance(x, Tensor) or x.dim() != 2):
        raise TypeError(
            f"x must be a (n, d) tensor or (ids, offsets), got {describe(x)}"
        )
    model = LogisticRegression(n_features, n_classes, bags=bags)
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels) + l2 * model.l2()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model.eval()
