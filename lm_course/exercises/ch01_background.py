"""Chapter 1 (background: from n-grams to language models): solutions and checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch01_background as ex
    ex.check_perplexity(perplexity)

Each ``check_*`` runs seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. The cases go from small ones a reader can follow by hand to
realistic sizes: thousands of tokens, alphabets and vocabularies past 64, padding that
holds ``-inf`` or NaN, ties, contexts never seen. What every check also holds an answer
to (type and dtype, inputs left alone) is in :mod:`lm_course.exercises.checker`. The
solutions are written for reading: the book shows them folded in its exercises
appendix.

Conventions shared with the package: logarithms are natural (nats); a context that
was never seen, when nothing is added to the counts, predicts the uniform distribution
``1/V`` (as :class:`lm_course.models.ngram.NGramModel` does); BPE breaks ties between
equally frequent pairs in favour of the smaller pair ``(a, b)`` (as
:class:`lm_course.tokenizers.BPETokenizer` does).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..checks import check_int, check_token_ids
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
        log_probs: ``(batch, seq)`` natural-log probabilities ``ln P(w_t | w_<t)``
            that a model gave to each actual next token. Padding positions hold
            arbitrary values.
        mask: ``(batch, seq)`` boolean, ``True`` where a token is real, ``False`` at
            padding. Every sequence has at least one real token.

    Returns:
        ``(batch,)``, the dtype of ``log_probs``: ``exp(-(1/N) * sum of ln P over the
        N real tokens)`` for each sequence.

    Perplexity is the exponential of the average negative log-likelihood per token, so a
    model that spreads its probability uniformly over ``V`` tokens has perplexity ``V``.
    """
    # Zero out the padding with `where`, not by multiplying with the mask: a padding
    # value of -inf (or nan) times 0 would be nan.
    real = torch.where(mask, log_probs, torch.zeros_like(log_probs))
    mean_nll = -real.sum(dim=-1) / mask.sum(dim=-1)
    return torch.exp(mean_nll)


def _alphabet(corpus: str) -> list[str]:
    """The distinct characters of ``corpus``, sorted: position in this list = id."""
    return sorted(set(corpus))


def solution_char_encode(text: str, corpus: str) -> list[int]:
    """Encode ``text`` with the character vocabulary of ``corpus``.

    Args:
        text: the text to encode; every character of it occurs in ``corpus``.
        corpus: the training text. The vocabulary is its distinct characters, sorted;
            a character's id is its position in that sorted list (so ids run from 0).

    Returns:
        One id per character of ``text`` (``""`` gives ``[]``).
    """
    stoi = {ch: i for i, ch in enumerate(_alphabet(corpus))}
    return [stoi[ch] for ch in text]


def solution_char_decode(ids: list[int], corpus: str) -> str:
    """Turn ids made by :func:`solution_char_encode` back into text.

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
        counts: ``(V, V)`` non-negative counts; ``counts[a, b]`` is how often token
            ``b`` followed token ``a`` in the training text.
        k: the smoothing constant, ``k >= 0`` (``k = 1`` is Laplace smoothing, ``k = 0``
            the maximum-likelihood estimate).

    Returns:
        ``(V, V)`` float64 tensor ``P[a, b] = P(b | a) = (C(a b) + k) / (C(a) + k V)``,
        where ``C(a)`` is the sum of row ``a``. Each row sums to 1. A row whose counts
        are all 0 while ``k = 0`` has no estimate (0/0); it gets the uniform ``1/V``.
    """
    counts = counts.double()
    vocab_size = counts.shape[-1]
    numer = counts + k
    denom = counts.sum(dim=-1, keepdim=True) + k * vocab_size  # (V, 1): one per row
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
        ``(pair, merged)``: ``pair`` is the most frequent adjacent pair ``(a, b)``
        (every position counts, so ``[5, 5, 5]`` holds ``(5, 5)`` twice); on a tie the
        smaller pair wins, comparing ``(a, b)`` as tuples. ``merged`` is a new list:
        ``ids`` with every occurrence of ``pair``, scanning left to right and without
        overlaps, replaced by ``new_id``.
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
    """Maximum likelihood along the last dim; uniform where the counts sum to 0."""
    total = counts.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(counts, 1.0 / counts.shape[-1])
    return torch.where(total > 0, counts / total.clamp(min=1e-300), uniform)


def solution_interpolated_trigram(
    counts: Tensor, lambdas: tuple[float, float, float]
) -> Tensor:
    """Linearly interpolated trigram probabilities (Jelinek-Mercer) from trigram counts.

    Args:
        counts: ``(V, V, V)`` non-negative trigram counts, ``counts[u, v, w]`` is
            ``C(u v w)``.
        lambdas: ``(l1, l2, l3)``, the weights of the unigram, bigram and trigram
            estimates; non-negative, summing to 1.

    Returns:
        ``(V, V, V)`` float64 tensor
        ``P[u, v, w] = l1 P1(w) + l2 P2(w | v) + l3 P3(w | u v)``, where each ``P`` is
        a maximum-likelihood estimate from counts derived from ``counts``:
        ``C(v w) = sum over u of C(u v w)`` and ``C(w) = sum over u, v of C(u v w)``.
        A context never seen (its counts are all 0) gets the uniform ``1/V``, so every
        ``P[u, v, :]`` sums to 1.
    """
    counts = counts.double()
    l1, l2, l3 = lambdas
    p1 = _ml_or_uniform(counts.sum(dim=(0, 1)))  # (V,)       P(w)
    p2 = _ml_or_uniform(counts.sum(dim=0))  # (V, V)    P(w | v), rows are v
    p3 = _ml_or_uniform(counts)  # (V, V, V) P(w | u v)
    # Broadcasting lines the estimates up on the last dim, w: p1 over every (u, v),
    # p2 over every u.
    return l1 * p1 + l2 * p2 + l3 * p3


# ------------------------------------------------------------------ checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _lengths_mask(lengths: Sequence[int] | Tensor, seq: int) -> Tensor:
    """``(batch, seq)`` boolean mask: row ``b`` is True on its first ``lengths[b]``."""
    return torch.arange(seq) < torch.as_tensor(lengths).view(-1, 1)


def _zipf_ids(vocab_size: int, n: int, seed: int, unused: Sequence[int] = ()) -> Tensor:
    """``n`` token ids with Zipf frequencies (the r-th commonest has weight 1/r), as in
    text; the ids in ``unused`` never occur, so their contexts are unseen."""
    weights = 1.0 / torch.arange(1, vocab_size + 1, dtype=torch.float64)
    weights = weights[torch.randperm(vocab_size, generator=_gen(seed))]
    weights[list(unused)] = 0.0
    return torch.multinomial(weights, n, replacement=True, generator=_gen(seed + 1))


def check_perplexity(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(log_probs, mask)`` against :func:`solution_perplexity`.

    Cases: a uniform model over 65 characters (perplexity exactly 65), one sequence
    without padding, a padded batch with padding filled with -30, 0, ``-inf`` and NaN
    (multiplying by the mask turns ``-inf`` into NaN), padding on the left, sequences of
    5000 tokens (the product of their probabilities underflows to 0 in float32), a batch
    of 70 sequences of 1 to 200 tokens, and float64 input (the result stays float64).
    """
    g = _gen(0)
    batch = torch.log(torch.rand(3, 6, generator=g) * 0.9 + 0.05)
    mask = _lengths_mask([6, 4, 1], 6)
    left = mask.flip(
        -1
    )  # the same lengths, with the real tokens at the end of each row
    long_mask = _lengths_mask([5000, 5000, 3001], 5000)
    many_mask = _lengths_mask(torch.randint(1, 201, (70,), generator=g), 200)
    wide_mask = _lengths_mask([9, 5, 2, 7], 9)

    def padded(log_probs: Tensor, mask: Tensor, value: float) -> Tensor:
        return log_probs.masked_fill(~mask, value)

    def nats(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
        return -3 * torch.rand(*shape, generator=g, dtype=dtype)  # 1.5 nats on average

    cases = [
        Case(
            "a uniform model over 65 characters (every log-prob is -ln 65; the answer "
            "is 65)",
            (torch.full((1, 10), -math.log(65.0)), torch.ones(1, 10, dtype=torch.bool)),
        ),
        Case(
            "one sequence of 7 tokens, no padding",
            (nats(1, 7), torch.ones(1, 7, dtype=torch.bool)),
        ),
        Case(
            "a batch of 3 sequences of 6, 4 and 1 real tokens, padding filled with -30",
            (padded(batch, mask, -30.0), mask),
        ),
        Case(
            "the same batch with padding filled with 0", (padded(batch, mask, 0), mask)
        ),
        Case(
            "the same batch with padding filled with -inf (the log of 0)",
            (padded(batch, mask, -math.inf), mask),
        ),
        Case(
            "the same batch with padding filled with NaN",
            (padded(batch, mask, math.nan), mask),
        ),
        Case(
            "the same batch padded on the left (the real tokens end each row), padding "
            "filled with -30",
            (padded(batch.flip(-1), left, -30.0), left),
        ),
        Case(
            "3 sequences of 5000, 5000 and 3001 real tokens of about 1.5 nats each "
            "(the product of their probabilities underflows to 0 in float32)",
            (padded(nats(3, 5000), long_mask, -math.inf), long_mask),
        ),
        Case(
            "70 sequences of 1 to 200 real tokens, padding filled with -inf",
            (padded(nats(70, 200), many_mask, -math.inf), many_mask),
        ),
        Case(
            "float64 log-probs of 4 sequences (the result stays float64)",
            (padded(nats(4, 9, dtype=torch.float64), wide_mask, -30.0), wide_mask),
        ),
    ]
    return run_cases(
        "perplexity", fn, solution_perplexity, cases, atol=0, rtol=2e-5, verbose=verbose
    )


def check_char_tokenizer(
    encode: Callable[[str, str], list[int]],
    decode: Callable[[list[int], str], str],
    verbose: bool = True,
) -> CheckResult:
    """Check ``encode(text, corpus)`` and ``decode(ids, corpus)`` against the solutions.

    ``encode`` is checked first, then ``decode`` on the reference ids of the same texts:
    an English corpus, Shakespeare with capitals, punctuation and a line break, a line
    of the Analects, the empty text, 3000 characters over an alphabet of 84 (ids past
    64), 2000 characters over 500 Chinese characters, and a text with characters
    outside the Basic Multilingual Plane. ``encode`` returns a list of ints, ``decode``
    a string.
    """
    shakespeare = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    analects = "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？"
    g = _gen(3)
    ascii_alphabet = [chr(c) for c in range(32, 115)] + ["\n"]  # 84 characters
    ascii_text = "".join(
        ascii_alphabet[i] for i in torch.randint(0, 84, (3000,), generator=g)
    )
    hanzi = "".join(
        chr(0x4E00 + int(i)) for i in torch.randperm(20000, generator=g)[:500]
    )
    hanzi_text = "".join(hanzi[i] for i in torch.randint(0, 500, (2000,), generator=g))
    astral = "🙂 la clé 𝄞 ß Ω 🙂 𝄞"
    texts = [
        ("'hold' with the vocabulary of 'hello world'", "hold", "hello world"),
        (
            "'Before we speak.\\n' with a line of Shakespeare as corpus",
            "Before we speak.\n",
            shakespeare,
        ),
        ("'不亦乐乎？' with a line of the Analects as corpus", "不亦乐乎？", analects),
        ("the empty text", "", "abc"),
        (
            "3000 characters over an alphabet of 84 (ids up to 83)",
            ascii_text[1000:],
            ascii_text,
        ),
        (
            "2000 characters over an alphabet of 500 Chinese characters",
            hanzi_text,
            hanzi + hanzi_text,
        ),
        (f"{astral!r} (emoji and a musical symbol)", astral[::-1], astral),
    ]
    result = run_cases(
        "char_encode",
        encode,
        solution_char_encode,
        [Case(d, (text, corpus)) for d, text, corpus in texts],
        verbose=False,
    )
    if result.passed:
        result = run_cases(
            "char_decode",
            decode,
            solution_char_decode,
            [
                Case(f"the ids of {d}", (solution_char_encode(text, corpus), corpus))
                for d, text, corpus in texts
            ],
            verbose=False,
        )
    if result.passed:
        result = CheckResult(
            "char_tokenizer",
            "passed",
            f"encode and decode match the reference on all {len(texts)} hidden texts.",
        )
    if verbose:
        print(result)
    return result


def check_addk_bigram(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(counts, k)`` against :func:`solution_addk_bigram`.

    Cases: Laplace (k = 1) on a small table, a small k, k = 0 (relative frequencies), a
    context never seen with k > 0 and with k = 0, the bigram counts of 50 000 tokens of
    Zipf-distributed text over 65 and over 100 tokens (with unseen contexts), counts in
    the millions, and a table of zeros. The exercise promises a float tensor: float32
    and float64 both pass.
    """
    g = _gen(1)
    small = torch.randint(0, 6, (4, 4), generator=g)
    bigger = torch.randint(0, 20, (6, 6), generator=g)
    unseen = torch.randint(0, 5, (5, 5), generator=g)
    unseen[2] = 0  # token 2 never appears as a context
    text65 = counts_from_ids(_zipf_ids(65, 50_000, seed=4, unused=[7, 30]), 2, 65)
    text100 = counts_from_ids(_zipf_ids(100, 50_000, seed=5, unused=[99]), 2, 100)
    millions = torch.randint(0, 3_000_000, (70, 70), generator=g)
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
        Case(
            "the bigram counts of 50 000 tokens over 65 (tokens 7 and 30 never occur), "
            "k = 0.01",
            (text65, 0.01),
        ),
        Case("the same table with k = 0", (text65, 0.0)),
        Case(
            "the bigram counts of 50 000 tokens over 100 (token 99 never occurs), "
            "k = 1",
            (text100, 1.0),
        ),
        Case("a (70, 70) table of counts up to 3 million, k = 0.5", (millions, 0.5)),
        Case(
            "a (3, 3) table of zeros, k = 0 (every row uniform)",
            (torch.zeros(3, 3, dtype=torch.long), 0.0),
        ),
    ]
    return run_cases(
        "addk_bigram",
        fn,
        solution_addk_bigram,
        cases,
        atol=0,
        rtol=1e-5,
        float_dtypes=(torch.float32, torch.float64),
        verbose=verbose,
    )


class _MergeStep(NamedTuple):
    """The answer of a BPE merge step, with its parts named for failure messages."""

    pair: tuple[int, int]
    merged: list[int]


def _merged_text_ids(text: str, merges: int) -> list[int]:
    """The bytes of ``text`` after ``merges`` BPE merges (ids 256 and up)."""
    ids = list(text.encode("utf-8"))
    for new_id in range(256, 256 + merges):
        ids = solution_bpe_merge_step(ids, new_id)[1]
    return ids


def check_bpe_merge_step(fn: Callable[..., Any], verbose: bool = True) -> CheckResult:
    """Check ``fn(ids, new_id)`` against :func:`solution_bpe_merge_step`.

    Cases: the bytes of ``"aaabdaaabac"`` (the classic example); ties (the smaller pair
    wins, where ``Counter.most_common`` would pick the first seen); runs of one id, odd
    and even (merges do not overlap); ids where counting pairs with and without overlaps
    picks different winners (``[7, 7, 7, 7]`` holds ``(7, 7)`` three times); a text of
    2000 bytes after 20 merges (ids up to 275); ids up to 1500 with a planted tie (past
    any table of 256 x 256); and two ids. The answer is a tuple ``(pair, merged)`` of a
    tuple of two ints and a list of ints, and ``ids`` is left as it was.
    """
    g = _gen(2)
    prose = (
        "The quick brown fox jumps over the lazy dog; 敏捷的棕色狐狸跳过了懒狗。 " * 30
    )[:700]
    big = torch.randint(0, 1500, (3000,), generator=g).tolist()
    for start in range(0, 3000, 100):  # plant two pairs 30 times each: a tie
        big[start : start + 2] = [1400, 3]
        big[start + 50 : start + 52] = [2, 1499]
    cases = [
        Case(
            "the bytes of 'aaabdaaabac' (97 = 'a'), new_id=256",
            (list(b"aaabdaaabac"), 256),
        ),
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
        Case(
            "ids [7, 7, 7, 7, 1, 2, 1, 2, 9]: counted with overlaps (7, 7) occurs 3 "
            "times and wins; without overlaps it would tie with (1, 2); new_id=10",
            ([7, 7, 7, 7, 1, 2, 1, 2, 9], 10),
        ),
        Case("101 copies of id 42, new_id=43", ([42] * 101, 43)),
        Case(
            "the UTF-8 bytes of 700 characters of English and Chinese after 20 merges "
            "(ids up to 275), new_id=276",
            (_merged_text_ids(prose, 20), 276),
        ),
        Case(
            "3000 random ids below 1500 where (1400, 3) and (2, 1499) both occur 30 "
            "times: (2, 1499) wins; new_id=1500",
            (big, 1500),
        ),
        Case("ids [4, 2], new_id=5", ([4, 2], 5)),
    ]
    return run_cases(
        "bpe_merge_step",
        fn,
        lambda ids, new_id: _MergeStep(*solution_bpe_merge_step(ids, new_id)),
        cases,
        verbose=verbose,
    )


def check_interpolated_trigram(
    fn: Callable[..., Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(counts, lambdas)`` against :func:`solution_interpolated_trigram`.

    Cases: each estimate alone (lambdas (1, 0, 0), (0, 1, 0), (0, 0, 1)), then mixtures,
    on sparse tables where some contexts were never seen; the trigram counts of 50 000
    Zipf-distributed tokens over 65 (the size of Tiny Shakespeare's alphabet) and a
    sparse table over 70; and a table of zeros. Float32 and float64 both pass.
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
    text = counts_from_ids(_zipf_ids(65, 50_000, seed=6, unused=[12]), 3, 65)
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
            (sparse(5), (0.2, 0.5, 0.3)),
        ),
        Case(
            "the trigram counts of 50 000 tokens over 65 (token 12 never occurs), "
            "lambdas (0.1, 0.3, 0.6)",
            (text, (0.1, 0.3, 0.6)),
        ),
        Case(
            "a sparse (70, 70, 70) table, lambdas (0.05, 0.15, 0.8)",
            (sparse(70), (0.05, 0.15, 0.8)),
        ),
        Case(
            "a (4, 4, 4) table of zeros, lambdas (0.2, 0.3, 0.5)",
            (torch.zeros(4, 4, 4, dtype=torch.long), (0.2, 0.3, 0.5)),
        ),
    ]
    return run_cases(
        "interpolated_trigram",
        fn,
        solution_interpolated_trigram,
        cases,
        atol=0,
        rtol=1e-5,
        float_dtypes=(torch.float32, torch.float64),
        verbose=verbose,
    )


def counts_from_ids(ids: Sequence[int] | Tensor, order: int, vocab_size: int) -> Tensor:
    """Dense n-gram count table of a token sequence: shape ``(vocab_size,) * order``.

    A helper for trying the exercises on real text (``counts[a, b]`` is how often ``b``
    follows ``a`` for ``order=2``). Dense tables grow as ``vocab_size ** order``: fine
    for 65 characters up to trigrams (274,625 entries), not for large vocabularies.

    Args:
        ids: ``(n,)`` token ids in ``[0, vocab_size)``, at least ``order`` of them.
        order: the n of the n-grams, ``>= 1``.
        vocab_size: the number of distinct tokens, ``>= 1``.

    Returns:
        ``(vocab_size,) * order`` int64 counts.
    """
    order = check_int("order", order, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or len(ids) < order:
        raise ValueError(
            f"ids must be a 1-D sequence of at least order={order} token ids, got "
            f"shape {tuple(ids.shape)}"
        )
    check_token_ids(ids[None], vocab_size, "ids")
    windows = ids.unfold(0, order, 1)  # (num_ngrams, order)
    flat = torch.zeros(len(windows), dtype=torch.long)
    for column in windows.unbind(dim=1):  # each n-gram as one base-V number
        flat = flat * vocab_size + column
    return torch.bincount(flat, minlength=vocab_size**order).view((vocab_size,) * order)
