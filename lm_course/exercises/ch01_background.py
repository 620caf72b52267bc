"""Chapter 1 (background: from n-grams to language models): solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch01_background as ex
    ex.check_perplexity(perplexity)

Each ``check_*`` runs small seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. A checker never raises. The solutions are written for reading:
the book shows them folded in its exercises appendix.

Conventions shared with the package: logarithms are natural (nats); a context that was
never seen, when nothing is added to the counts, predicts the uniform distribution ``1/V``
(as :class:`lm_course.models.ngram.NGramModel` does); BPE breaks ties between equally
frequent pairs in favour of the smaller pair ``(a, b)`` (as
:class:`lm_course.tokenizers.BPETokenizer` does).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .checker import Case, CheckResult, run_cases

__all__ = [
    "solution_perplexity",
    "solution_char_encode",
    "solution_char_decode",
    "solution_addk_bigram",
    "solution_bpe_merge_step",
    "solution_interpolated_trigram",
    "check_perplexity",
    "check_char_tokenizer",
    "check_addk_bigram",
    "check_bpe_merge_step",
    "check_interpolated_trigram",
    "counts_from_ids",
]


# ------------------------------------------------------------------ reference solutions


def solution_perplexity(log_probs: Tensor, mask: Tensor) -> Tensor:
    """Perplexity of each sequence of a padded batch, from per-token log-probabilities.

    Args:
        log_probs: ``(batch, seq)`` natural-log probabilities ``ln P(w_t | w_<t)`` that a
            model gave to each actual next token. Padding positions hold arbitrary values.
        mask: ``(batch, seq)`` boolean, ``True`` where a token is real, ``False`` at padding.
            Every sequence has at least one real token.

    Returns:
        ``(batch,)``: ``exp(-(1/N) * sum of ln P over the N real tokens)`` for each sequence.

    Perplexity is the exponential of the average negative log-likelihood per token, so a
    model that spreads its probability uniformly over ``V`` tokens has perplexity ``V``.
    """
    # Zero out the padding with `where`, not by multiplying with the mask: a padding value
    # of -inf times 0 would be nan.
    real = torch.where(mask, log_probs, torch.zeros_like(log_probs))
    mean_nll = -real.sum(dim=-1) / mask.sum(dim=-1)
    return torch.exp(mean_nll)


def _alphabet(corpus: str) -> list[str]:
    """The distinct characters of ``corpus``, sorted: position in this list = token id."""
    return sorted(set(corpus))


def solution_char_encode(text: str, corpus: str) -> list[int]:
    """Encode ``text`` with the character vocabulary of ``corpus``.

    Args:
        text: the text to encode; every character of it occurs in ``corpus``.
        corpus: the training text. The vocabulary is its distinct characters, sorted; a
            character's id is its position in that sorted list (so ids run from 0).

    Returns:
        One id per character of ``text`` (``""`` gives ``[]``).
    """
    stoi = {ch: i for i, ch in enumerate(_alphabet(corpus))}
    return [stoi[ch] for ch in text]


def solution_char_decode(ids: list[int], corpus: str) -> str:
    """Turn ids made by :func:`solution_char_encode` with the same ``corpus`` back into text.

    Args:
        ids: token ids, each in ``[0, number of distinct characters of corpus)``.
        corpus: the training text that defines the vocabulary.

    Returns:
        The text, one character per id.
    """
    itos = _alphabet(corpus)
    return "".join(itos[i] for i in ids)


def solution_addk_bigram(counts: Tensor, k: float) -> Tensor:
    """Add-k smoothed bigram probabilities from a table of bigram counts.

    Args:
        counts: ``(V, V)`` non-negative counts; ``counts[a, b]`` is how often token ``b``
            followed token ``a`` in the training text.
        k: the smoothing constant, ``k >= 0`` (``k = 1`` is Laplace smoothing, ``k = 0``
            the maximum-likelihood estimate).

    Returns:
        ``(V, V)`` float64 tensor ``P[a, b] = P(b | a) = (C(a b) + k) / (C(a) + k V)``,
        where ``C(a)`` is the sum of row ``a``. Each row sums to 1. A row whose counts are
        all 0 while ``k = 0`` has no estimate (0/0); it gets the uniform ``1/V``.
    """
    counts = counts.double()
    vocab_size = counts.shape[-1]
    numer = counts + k
    denom = (
        counts.sum(dim=-1, keepdim=True) + k * vocab_size
    )  # (V, 1): one total per row
    uniform = torch.full_like(numer, 1.0 / vocab_size)
    return torch.where(denom > 0, numer / denom.clamp(min=1e-300), uniform)


def solution_bpe_merge_step(
    ids: list[int], new_id: int
) -> tuple[tuple[int, int], list[int]]:
    """One step of BPE training: find the most frequent adjacent pair and merge it.

    Args:
        ids: the current token ids of the text, at least 2 of them.
        new_id: the id the merged pair gets.

    Returns:
        ``(pair, merged)``: ``pair`` is the most frequent adjacent pair ``(a, b)`` (every
        position counts, so ``[5, 5, 5]`` holds ``(5, 5)`` twice); on a tie the smaller pair
        wins, comparing ``(a, b)`` as tuples. ``merged`` is ``ids`` with every occurrence of
        ``pair``, scanning left to right and without overlaps, replaced by ``new_id``.
    """
    pair_counts = Counter(zip(ids, ids[1:]))
    # Highest count first; among equal counts, the smallest pair. (Counter.most_common
    # would break ties by first appearance instead, which depends on the text's order.)
    pair = min(pair_counts, key=lambda p: (-pair_counts[p], p))
    merged: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2  # both tokens are used up: "5 5 5" becomes "X 5", not "X X"
        else:
            merged.append(ids[i])
            i += 1
    return pair, merged


def _ml_or_uniform(counts: Tensor) -> Tensor:
    """Maximum-likelihood distribution along the last dim; uniform where the total is 0."""
    total = counts.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(counts, 1.0 / counts.shape[-1])
    return torch.where(total > 0, counts / total.clamp(min=1e-300), uniform)


def solution_interpolated_trigram(
    counts: Tensor, lambdas: tuple[float, float, float]
) -> Tensor:
    """Linearly interpolated trigram probabilities (Jelinek-Mercer) from trigram counts.

    Args:
        counts: ``(V, V, V)`` non-negative trigram counts, ``counts[u, v, w] = C(u v w)``.
        lambdas: ``(l1, l2, l3)``, the weights of the unigram, bigram and trigram estimates;
            non-negative, summing to 1.

    Returns:
        ``(V, V, V)`` float64 tensor ``P[u, v, w] = l1 P1(w) + l2 P2(w | v) + l3 P3(w | u v)``
        where each ``P`` is a maximum-likelihood estimate from counts derived from
        ``counts``: ``C(v w) = sum over u of C(u v w)`` and ``C(w) = sum over u, v of
        C(u v w)``. A context never seen (its counts are all 0) gets the uniform ``1/V``,
        so every ``P[u, v, :]`` sums to 1.
    """
    counts = counts.double()
    l1, l2, l3 = lambdas
    p1 = _ml_or_uniform(counts.sum(dim=(0, 1)))  # (V,)       P(w)
    p2 = _ml_or_uniform(counts.sum(dim=0))  # (V, V)    P(w | v), rows are v
    p3 = _ml_or_uniform(counts)  # (V, V, V) P(w | u v)
    # Broadcasting lines the estimates up on the last dim, w: p1 over every (u, v), p2 over u.
    return l1 * p1 + l2 * p2 + l3 * p3


# ------------------------------------------------------------------ checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class _Whole:
    """A list or tuple compared as one value, so that a failure message shows all of it
    ("expected [3, 5, 4, 1], got [0, 2, 1, 3]") rather than the first differing item."""

    value: tuple[int, ...] | list[int]

    def __repr__(self) -> str:
        return repr(self.value)


def _int_sequence(out: Any, kind: type, what: str) -> _Whole:
    """Turn a reader's answer into ``kind`` (tuple or list) of Python ints, or explain."""
    try:
        return _Whole(kind(int(i) for i in out))
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} must be a {kind.__name__} of ints, got {out!r:.60}"
        ) from None


def check_perplexity(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(log_probs, mask)`` against :func:`solution_perplexity`.

    Cases: a uniform model over 65 characters (perplexity exactly 65), one sequence without
    padding, and padded batches whose padding holds large negative values (catches
    averaging over the padding too).
    """
    g = _gen(0)
    uniform = torch.full((1, 10), -math.log(65.0))
    one = torch.log(torch.rand(1, 7, generator=g) * 0.9 + 0.05)
    batch = torch.log(torch.rand(3, 6, generator=g) * 0.9 + 0.05)
    lengths = torch.tensor([6, 4, 1])
    mask = torch.arange(6)[None, :] < lengths[:, None]  # (3, 6), True = real token
    padded = torch.where(mask, batch, torch.full_like(batch, -30.0))
    cases = [
        Case(
            "a uniform model over 65 characters (every log-prob is -ln 65; the answer is 65)",
            (uniform, torch.ones(1, 10, dtype=torch.bool)),
        ),
        Case(
            "one sequence of 7 tokens, no padding",
            (one, torch.ones(1, 7, dtype=torch.bool)),
        ),
        Case(
            "a batch of 3 sequences of 6, 4 and 1 real tokens, padding filled with -30",
            (padded, mask),
        ),
        Case(
            "the same batch with padding filled with 0",
            (torch.where(mask, batch, torch.zeros_like(batch)), mask),
        ),
    ]
    return run_cases(
        "perplexity",
        fn,
        solution_perplexity,
        cases,
        atol=1e-6,
        rtol=1e-5,
        verbose=verbose,
    )


def check_char_tokenizer(
    encode: Callable[[str, str], list[int]],
    decode: Callable[[list[int], str], str],
    verbose: bool = True,
) -> CheckResult:
    """Check ``encode(text, corpus)`` and ``decode(ids, corpus)`` against the solutions.

    ``encode`` is checked first (an English corpus, Shakespeare with capitals, punctuation
    and a line break, a Chinese corpus, the empty text), then ``decode`` on the reference
    ids of the same texts.
    """
    shakespeare = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    analects = "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？"
    texts = [
        ("'hold' with the vocabulary of 'hello world'", "hold", "hello world"),
        (
            "'Before we speak.\\n' with a line of Shakespeare as corpus",
            "Before we speak.\n",
            shakespeare,
        ),
        ("'不亦乐乎？' with a line of the Analects as corpus", "不亦乐乎？", analects),
        ("the empty text", "", "abc"),
    ]

    def encode_whole(text: str, corpus: str) -> _Whole:
        return _int_sequence(encode(text, corpus), list, "encode's answer")

    enc = run_cases(
        "char_encode",
        encode_whole if callable(encode) else encode,
        lambda text, corpus: _Whole(solution_char_encode(text, corpus)),
        [Case(d, (text, corpus)) for d, text, corpus in texts],
        verbose=False,
    )
    if not enc.passed:
        result = enc
    else:
        dec = run_cases(
            "char_decode",
            decode,
            solution_char_decode,
            [
                Case(f"the ids of {d}", (solution_char_encode(text, corpus), corpus))
                for d, text, corpus in texts
            ],
            verbose=False,
        )
        result = (
            dec
            if not dec.passed
            else CheckResult(
                "char_tokenizer",
                "passed",
                f"encode and decode match the reference on all {len(texts)} hidden texts.",
            )
        )
    if verbose:
        print(result)
    return result


def check_addk_bigram(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(counts, k)`` against :func:`solution_addk_bigram`.

    Cases: Laplace (k = 1) on a small table, a small k, k = 0 (plain relative frequencies),
    and a context that was never seen, with k > 0 and with k = 0.
    """
    g = _gen(1)
    small = torch.randint(0, 6, (4, 4), generator=g)
    bigger = torch.randint(0, 20, (6, 6), generator=g)
    unseen = torch.randint(0, 5, (5, 5), generator=g)
    unseen[2] = 0  # token 2 never appears as a context
    cases = [
        Case("a (4, 4) count table with k = 1 (Laplace)", (small, 1.0)),
        Case("a (6, 6) count table with k = 0.1", (bigger, 0.1)),
        Case(
            "a (6, 6) count table with k = 0 (relative frequencies)", (bigger + 1, 0.0)
        ),
        Case(
            "a (5, 5) table whose row 2 is all zeros (an unseen context), k = 0.5",
            (unseen, 0.5),
        ),
        Case(
            "a (5, 5) table whose row 2 is all zeros, k = 0 (that row is 0/0: give it "
            "the uniform 1/V)",
            (unseen, 0.0),
        ),
    ]
    return run_cases(
        "addk_bigram",
        fn,
        solution_addk_bigram,
        cases,
        atol=1e-8,
        rtol=1e-6,
        verbose=verbose,
    )


def check_bpe_merge_step(fn: Callable[..., Any], verbose: bool = True) -> CheckResult:
    """Check ``fn(ids, new_id)`` against :func:`solution_bpe_merge_step`.

    Cases: the bytes of ``"aaabdaaabac"`` (the classic example), a text where two pairs
    tie (catches ``Counter.most_common``, which breaks ties by first appearance), runs of
    one repeated id (catches overlapping merges) and a pair that occurs three times.
    """
    classic = list(b"aaabdaaabac")
    cases = [
        Case("the bytes of 'aaabdaaabac' (97 = 'a'), new_id=256", (classic, 256)),
        Case(
            "ids [3, 1, 2, 3, 1, 2]: (3, 1) and (1, 2) both occur twice, the smaller "
            "pair (1, 2) wins; new_id=4",
            ([3, 1, 2, 3, 1, 2], 4),
        ),
        Case(
            "ids [5, 5, 5]: the pair (5, 5) occurs twice but only one copy can be "
            "merged; new_id=9",
            ([5, 5, 5], 9),
        ),
        Case("ids [5, 5, 5, 5, 1, 5, 5]; new_id=9", ([5, 5, 5, 5, 1, 5, 5], 9)),
        Case(
            "the bytes of 'the cat the hat the': 'th' and 'he' both occur 3 times, the "
            "smaller pair 'he' = (104, 101) wins; new_id=300",
            (list(b"the cat the hat the"), 300),
        ),
    ]
    if not callable(fn):  # let run_cases explain that the function itself is needed
        return run_cases(
            "bpe_merge_step", fn, solution_bpe_merge_step, cases, verbose=verbose
        )

    def part(index: int, name: str) -> Callable[..., Any]:
        """Pick the pair (0) or the merged ids (1) out of ``fn``'s answer."""

        def call(ids: list[int], new_id: int) -> Any:
            out = fn(ids, new_id)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(
                    f"return a tuple (pair, merged_ids), not {type(out).__name__}"
                )
            if index == 0:
                return _int_sequence(out[0], tuple, "the pair")
            return _int_sequence(out[1], list, "the merged ids")

        call.__name__ = name
        return call

    # Compare the pair first, then the merged ids, so a failure says which of the two is off.
    for index, label in [(0, "the most frequent pair"), (1, "the merged ids")]:
        result = run_cases(
            "bpe_merge_step",
            part(index, label),
            lambda ids, new_id, index=index: _Whole(
                solution_bpe_merge_step(ids, new_id)[index]
            ),
            [Case(f"{c.description} ({label})", c.args) for c in cases],
            verbose=False,
        )
        if not result.passed:
            break
    if verbose:
        print(result)
    return result


def check_interpolated_trigram(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(counts, lambdas)`` against :func:`solution_interpolated_trigram`.

    Cases: each estimate alone (lambdas (1, 0, 0), (0, 1, 0), (0, 0, 1)), then a mixture, on
    sparse count tables where some contexts were never seen.
    """
    g = _gen(2)

    def sparse(v: int) -> Tensor:
        # Mostly zeros, as real trigram tables are: ~30% of the entries are seen.
        seen = torch.rand(v, v, v, generator=g) < 0.3
        return torch.randint(1, 5, (v, v, v), generator=g) * seen

    dense = torch.randint(1, 4, (3, 3, 3), generator=g)
    table = sparse(4)
    table[0, 1] = 0  # the context "0 1" never occurs
    table[:, 3] = 0  # token 3 is never the middle token: P(w | 3) is unseen too
    mixed = sparse(5)
    cases = [
        Case(
            "a dense (3, 3, 3) table, lambdas (1, 0, 0): the unigram estimate alone",
            (dense, (1.0, 0.0, 0.0)),
        ),
        Case(
            "a dense (3, 3, 3) table, lambdas (0, 1, 0): the bigram estimate alone",
            (dense, (0.0, 1.0, 0.0)),
        ),
        Case(
            "a dense (3, 3, 3) table, lambdas (0, 0, 1): the trigram estimate alone",
            (dense, (0.0, 0.0, 1.0)),
        ),
        Case(
            "a sparse (4, 4, 4) table with unseen contexts, lambdas (0, 0, 1)",
            (table, (0.0, 0.0, 1.0)),
        ),
        Case(
            "a sparse (4, 4, 4) table with unseen contexts, lambdas (0.1, 0.3, 0.6)",
            (table, (0.1, 0.3, 0.6)),
        ),
        Case(
            "a sparse (5, 5, 5) table, lambdas (0.2, 0.5, 0.3)",
            (mixed, (0.2, 0.5, 0.3)),
        ),
    ]
    return run_cases(
        "interpolated_trigram",
        fn,
        solution_interpolated_trigram,
        cases,
        atol=1e-8,
        rtol=1e-6,
        verbose=verbose,
    )


def counts_from_ids(ids: Sequence[int] | Tensor, order: int, vocab_size: int) -> Tensor:
    """Dense n-gram count table of a token sequence: shape ``(vocab_size,) * order``.

    A helper for trying the exercises on real text (``counts[a, b]`` is how often ``b``
    follows ``a`` for ``order=2``). Dense tables grow as ``vocab_size ** order``: fine for
    65 characters up to trigrams (274,625 entries), not for large vocabularies.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or len(ids) < order:
        raise ValueError(
            f"ids must be a 1-D sequence of at least order={order} token ids, got shape "
            f"{tuple(ids.shape)}"
        )
    windows = ids.unfold(0, order, 1)  # (num_ngrams, order)
    flat = torch.zeros(len(windows), dtype=torch.long)
    for column in windows.unbind(dim=1):  # each n-gram as one base-V number
        flat = flat * vocab_size + column
    return torch.bincount(flat, minlength=vocab_size**order).view((vocab_size,) * order)
