"""A count-based n-gram language model with add-k smoothing.

An n-gram model predicts the next token from the previous ``n - 1`` tokens only, by
counting. With ``C(.)`` the number of times a sequence occurs in the training data and
``V`` the vocabulary size, add-k smoothing gives

    P(w | c) = (C(c w) + k) / (C(c) + k V)

where ``c`` is the context (the last ``n - 1`` tokens) and ``C(c)`` counts how often
``c`` is followed by some token. ``k = 0`` is the maximum-likelihood estimate, which
gives probability 0 to anything unseen; ``k = 1`` is Laplace smoothing. Smaller ``k``
trusts the counts more. For a context never seen in training, every next token gets
``1 / V``.

Storage: there are ``V ** n`` possible n-grams (65 ** 3 = 274,625 for a character
trigram on Tiny Shakespeare), but most never occur. We give each n-gram one integer, its
tokens read as the digits of a base-``V`` number, and keep only the n-grams seen in
training, as a sorted tensor of those integers with their counts. Looking an n-gram up
is then a binary search (:func:`torch.searchsorted`), and everything works on whole
tensors at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lm_course.checks import check_int, check_number

_MAX_INDEX = 2**63 - 1  # the largest int64


class NGramModel:
    """An order-``n`` token language model estimated by counting, with add-k smoothing.

    Args:
        order: ``n``, the number of tokens in an n-gram: 1 = unigram (no context),
            2 = bigram (one token of context), 3 = trigram, ...
        vocab_size: ``V``; token ids run from 0 to ``V - 1``.
        add_k: the smoothing constant ``k >= 0`` added to every count.

    Before :meth:`fit` the model has seen nothing and predicts the uniform distribution
    (perplexity ``vocab_size``), the baseline every trained model should beat.

    Example:
        >>> model = NGramModel(order=2, vocab_size=3).fit([0, 1, 2, 0, 1, 2, 0, 1])
        >>> model.prob([0], 1)  # (C(0 1) + 1) / (C(0) + 3) = (3 + 1) / (3 + 3)
        0.6666666666666666
    """

    def __init__(self, order: int, vocab_size: int, add_k: float = 1.0) -> None:
        check_int("order", order, minimum=1, hint=" (e.g. order=2 for a bigram model)")
        check_int("vocab_size", vocab_size, minimum=1, hint=" (distinct token ids)")
        check_number(
            "add_k",
            add_k,
            minimum=0,
            hint=" (1.0 is Laplace smoothing; smaller values, e.g. 0.01, trust the "
            "counts more)",
        )
        if vocab_size**order > _MAX_INDEX:
            raise ValueError(
                f"order={order} with vocab_size={vocab_size} gives "
                f"{vocab_size}**{order} possible n-grams, too many to number with "
                "64-bit integers; use a smaller order"
            )
        self.order = order
        self.vocab_size = vocab_size
        self.add_k = float(add_k)
        # Seen n-grams and contexts as sorted base-V integers, with their counts.
        # Empty until fit() is called: the unfitted model is uniform.
        self.ngram_keys = torch.zeros(0, dtype=torch.long)
        self.ngram_counts = torch.zeros(0, dtype=torch.long)
        self.context_keys = torch.zeros(0, dtype=torch.long)
        self.context_counts = torch.zeros(0, dtype=torch.long)

    def fit(self, ids: Sequence[int] | torch.Tensor) -> NGramModel:
        """Count every n-gram of ``ids`` (shape ``(seq,)``), replacing earlier counts.

        Returns the model itself, so ``NGramModel(2, 65).fit(ids)`` reads naturally.
        """
        ids = self._check_ids(ids, "ids", min_len=self.order)
        windows = ids.unfold(0, self.order, 1)  # (seq - n + 1, n): every n-gram of ids
        self.ngram_keys, self.ngram_counts = torch.unique(
            self._to_key(windows), return_counts=True
        )
        # C(c): how often each context is *followed by a token*, so from the same
        # windows.
        self.context_keys, self.context_counts = torch.unique(
            self._to_key(windows[:, :-1]), return_counts=True
        )
        return self

    # -------------------------------------------------------------------- probabilities

    def next_distribution(self, context: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """P(next token | context) for every token: float64, shape ``(vocab,)``.

        Only the last ``order - 1`` tokens of ``context`` are used, so it must have at
        least that many. With ``add_k = 0`` a context never seen in training has no
        estimate (0 / 0); we return the uniform distribution there.
        """
        n = self.order - 1
        context = self._check_ids(context, "context", min_len=n)
        context = context[len(context) - n :]  # (n,)
        # Every possible n-gram "context + w", for w = 0 .. V-1, as one batch.
        candidates = torch.cat(
            [
                context.expand(self.vocab_size, n),
                torch.arange(self.vocab_size)[:, None],
            ],
            dim=1,
        )
        counts = self._lookup(
            self.ngram_keys, self.ngram_counts, self._to_key(candidates)
        )
        total = self._lookup(
            self.context_keys, self.context_counts, self._to_key(context[None])
        )
        return self._smoothed(
            counts, total
        )  # total (1,) broadcasts over counts (vocab,)

    def prob(self, context: Sequence[int] | torch.Tensor, next_id: int) -> float:
        """P(``next_id`` | the last ``order - 1`` tokens of ``context``)."""
        check_int("next_id", next_id, minimum=0, maximum=self.vocab_size - 1)
        return self.next_distribution(context)[next_id].item()

    def log_likelihood(self, ids: Sequence[int] | torch.Tensor) -> float:
        """Sum of ln P(token | its ``order - 1`` predecessors) over ``ids``, in nats.

        The first ``order - 1`` tokens have too little context to be scored: they only
        serve as context for the tokens after them. So ``len(ids) - order + 1`` tokens
        are scored.
        """
        ids = self._check_ids(ids, "ids", min_len=self.order)
        windows = ids.unfold(0, self.order, 1)  # (num_scored, n)
        counts = self._lookup(self.ngram_keys, self.ngram_counts, self._to_key(windows))
        totals = self._lookup(
            self.context_keys, self.context_counts, self._to_key(windows[:, :-1])
        )
        return torch.log(self._smoothed(counts, totals)).sum().item()

    def perplexity(self, ids: Sequence[int] | torch.Tensor) -> float:
        """exp(mean negative log-likelihood per scored token); see log_likelihood.

        A model that knows nothing (uniform) has perplexity ``vocab_size``; lower is
        better. It is ``inf`` when a scored token has probability 0 (possible only with
        add_k = 0).
        """
        total = self.log_likelihood(ids)  # also checks ids
        num_scored = len(ids) - self.order + 1
        return math.exp(-total / num_scored)

    def sample(
        self,
        context: Sequence[int] | torch.Tensor,
        num_tokens: int,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Draw ``num_tokens`` new tokens one at a time from :meth:`next_distribution`.

        Returns the new tokens only (not the context). Pass a seeded ``torch.Generator``
        for reproducible samples.
        """
        check_int("num_tokens", num_tokens, minimum=0)
        tokens = self._check_ids(context, "context", min_len=self.order - 1).tolist()
        new: list[int] = []
        for _ in range(num_tokens):
            probs = self.next_distribution(tokens)
            next_id = torch.multinomial(probs, 1, generator=generator).item()
            tokens.append(next_id)
            new.append(next_id)
        return new

    # -------------------------------------------------------------------------- helpers

    def _smoothed(self, counts: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        """Add-k estimate (C(c w) + k) / (C(c) + k V) from the two counts, as float64.

        Where the denominator is 0 (unseen context and k = 0) the estimate is 0 / 0; we
        use the uniform 1 / V there, the limit of add-k as k goes to 0.
        """
        numer = counts.double() + self.add_k
        denom = totals.double() + self.add_k * self.vocab_size
        return torch.where(
            denom > 0, numer / denom.clamp(min=1e-300), 1.0 / self.vocab_size
        )

    def _to_key(self, grams: torch.Tensor) -> torch.Tensor:
        """Read each row of ``grams`` ``(rows, m)`` as a base-V number: ``(rows,)``."""
        key = torch.zeros(grams.shape[0], dtype=torch.long)
        for column in grams.unbind(
            dim=1
        ):  # Horner's rule, most significant token first
            key = key * self.vocab_size + column
        return key

    @staticmethod
    def _lookup(
        keys: torch.Tensor, counts: torch.Tensor, query: torch.Tensor
    ) -> torch.Tensor:
        """Count of each ``query`` key (0 if unseen), by binary search in ``keys``."""
        if keys.numel() == 0:
            return torch.zeros_like(query)
        pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
        return torch.where(keys[pos] == query, counts[pos], 0)

    def _check_ids(
        self, ids: Sequence[int] | torch.Tensor, name: str, min_len: int
    ) -> torch.Tensor:
        """Turn ``ids`` into a 1-D int64 tensor, checking its length and range."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
                raise TypeError(
                    f"{name} must be a 1-D integer tensor, got shape "
                    f"{tuple(ids.shape)} and dtype {ids.dtype}"
                )
            ids = ids.long().cpu()
        else:
            if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
                raise TypeError(
                    f"{name} must be a list of int token ids or a 1-D tensor, got "
                    f"{type(ids).__name__}; encode text with a tokenizer first"
                )
            for pos, i in enumerate(ids):
                # A float or bool is a bug upstream; torch.tensor would quietly cast it.
                if isinstance(i, bool) or not isinstance(i, int):
                    raise TypeError(f"{name}[{pos}]={i!r} is not an int token id")
            ids = torch.tensor(ids, dtype=torch.long)
        if len(ids) < min_len:
            raise ValueError(
                f"{name} has {len(ids)} tokens, but an order-{self.order} model needs "
                f"at least {min_len}; pass a longer sequence"
            )
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0].item()
            raise ValueError(
                f"{name} contains token id {bad}, outside [0, "
                f"vocab_size={self.vocab_size}); was the model built with the "
                "tokenizer's vocab_size?"
            )
        return ids
