"""Chapter 6 (applications), translation: reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch06_translation as ex
    ex.check_beam_step(beam_step)

The exercises take apart what the chapter's translator does: one step of beam search,
the length-normalised choice at its end, BLEU's clipped n-gram precision, and the
grouping that keeps test sentences out of training. Hidden cases go from a few items a
reader can follow by hand to realistic sizes (a 4,000-word vocabulary, sentences of 60
words, 5,000 sentence pairs with long chains of shared sentences). What every check
also holds an answer to (type, inputs left alone) is in
:mod:`lm_course.exercises.checker`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .checker import Case, CheckResult, run_cases

__all__ = [
    "check_beam_step",
    "check_clipped_precision",
    "check_group_ids",
    "check_pick_final",
    "solution_beam_step",
    "solution_clipped_precision",
    "solution_group_ids",
    "solution_pick_final",
]


# ------------------------------------------------------------------ reference solutions


class _BeamStep(NamedTuple):
    scores: Tensor
    beam: Tensor
    word: Tensor


def solution_beam_step(scores: Tensor, logp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step of beam search: the ``k`` best one-word extensions per sentence.

    Args:
        scores: ``(batch, k)`` total log-probabilities of the current hypotheses
            (``-inf`` for a slot that holds none yet).
        logp: ``(batch, k, vocab)`` log-probabilities of the next word after each.

    Returns:
        ``(scores, beam, word)``, each ``(batch, k)``, best first: the new totals
        ``scores[b, beam] + logp[b, beam, word]``, the hypothesis each extends
        (long) and the word it adds (long).
    """
    batch, k, vocab = logp.shape
    candidates = (scores[..., None] + logp).reshape(batch, k * vocab)
    best, flat = candidates.topk(k, dim=-1)  # sorted, best first
    return _BeamStep(best, flat // vocab, flat % vocab)


def solution_pick_final(scores: Tensor, lengths: Tensor, alpha: float) -> Tensor:
    """The hypothesis to output per sentence: best ``score / length ** alpha``.

    Args:
        scores: ``(batch, k)`` total log-probabilities of the finished hypotheses.
        lengths: ``(batch, k)`` their lengths in tokens (>= 1), integer tensor.
        alpha: the length-penalty exponent; 0 compares plain totals.

    Returns:
        ``(batch,)`` long tensor: the index of the chosen hypothesis in each row.
    """
    return (scores / lengths.double().pow(alpha).to(scores.dtype)).argmax(dim=-1)


def solution_clipped_precision(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]], n: int
) -> tuple[int, int]:
    """BLEU's modified n-gram precision for one sentence, as two counts.

    Each n-gram of the hypothesis counts as a match at most as often as it occurs in
    the reference where it occurs most often ("clipping"): "the the the" against "the
    cat" matches one "the", not three.

    Args:
        hypothesis: the tokens of the translation.
        references: one or more tokenised reference translations.
        n: the n-gram order (1 for words, 2 for pairs, ...).

    Returns:
        ``(matches, total)``: clipped matching n-grams, and the number of n-grams in
        the hypothesis (``max(0, len - n + 1)``), both Python ints.
    """

    def ngrams(tokens: Sequence[str]) -> Counter[tuple[str, ...]]:
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    counts = ngrams(hypothesis)
    most = Counter()
    for reference in references:
        most |= ngrams(reference)  # | keeps the larger count of each n-gram
    matches = sum(min(c, most[g]) for g, c in counts.items())
    return matches, sum(counts.values())


def solution_group_ids(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Which group each ``(zh, en)`` pair belongs to; groups share no sentence.

    Two pairs are in one group when they share their Chinese or their English
    sentence, directly or through a chain of other pairs. Groups are numbered 0, 1,
    2, ... in the order of their first pair.

    Returns:
        A list of ``len(pairs)`` ints.
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for zh, en in pairs:
        a, b = "zh:" + zh, "en:" + en
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)
    numbers: dict[str, int] = {}
    return [numbers.setdefault(root("zh:" + zh), len(numbers)) for zh, _ in pairs]


# ------------------------------------------------------------------ checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logp(batch: int, k: int, vocab: int, seed: int) -> Tensor:
    return torch.log_softmax(3 * torch.randn(batch, k, vocab, generator=_gen(seed)), -1)


def check_beam_step(
    fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]],
    verbose: bool = True,
) -> CheckResult:
    """Check ``fn(scores, logp)`` against :func:`solution_beam_step`.

    Cases: one sentence, 2 hypotheses, 3 words (by hand); the first step (only slot 0
    holds a hypothesis, the others are ``-inf``); a vocabulary of 4,000 words with a
    beam of 5 and 16 sentences; a beam of 12; float64 scores.
    """
    start = torch.full((16, 5), float("-inf"))
    start[:, 0] = 0.0
    small = torch.log(torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]]))
    cases = [
        Case(
            "1 sentence, 2 hypotheses, 3 words", (torch.tensor([[-1.0, -0.5]]), small)
        ),
        Case(
            "the first step: 16 sentences, beam 5, only slot 0 filled (-inf elsewhere),"
            " 4,000 words",
            (start, _logp(16, 5, 4000, 1)),
        ),
        Case(
            "16 sentences, beam 5, 4,000 words",
            (-10 * torch.rand(16, 5, generator=_gen(2)), _logp(16, 5, 4000, 3)),
        ),
        Case(
            "4 sentences, beam 12, 500 words",
            (-5 * torch.rand(4, 12, generator=_gen(4)), _logp(4, 12, 500, 5)),
        ),
        Case(
            "float64, 3 sentences, beam 4, 1,000 words",
            (
                -5 * torch.rand(3, 4, generator=_gen(6), dtype=torch.float64),
                _logp(3, 4, 1000, 7).double(),
            ),
        ),
    ]
    return run_cases("beam_step", fn, solution_beam_step, cases, verbose=verbose)


def check_pick_final(
    fn: Callable[[Tensor, Tensor, float], Tensor], verbose: bool = True
) -> CheckResult:
    """Check ``fn(scores, lengths, alpha)`` against :func:`solution_pick_final`.

    Cases: alpha 0 (the plain total picks the short hypothesis), alpha 1 (the mean per
    token picks the long one), alpha 0.6, 256 sentences with beams of 8 and lengths up
    to 60.
    """
    scores = torch.tensor([[-2.0, -4.5], [-6.0, -3.0]])
    lengths = torch.tensor([[2, 9], [12, 3]])
    g = _gen(8)
    big_scores = -30 * torch.rand(256, 8, generator=g)
    big_lengths = torch.randint(1, 61, (256, 8), generator=g)
    cases = [
        Case("alpha 0 on 2 sentences", (scores, lengths, 0.0)),
        Case("alpha 1 on 2 sentences", (scores, lengths, 1.0)),
        Case("alpha 0.6 on 2 sentences", (scores, lengths, 0.6)),
        Case("alpha 0.6, 256 sentences, beam 8", (big_scores, big_lengths, 0.6)),
        Case("alpha 1, 256 sentences, beam 8", (big_scores, big_lengths, 1.0)),
    ]
    return run_cases("pick_final", fn, solution_pick_final, cases, verbose=verbose)


def _sentence(rng: random.Random, words: list[str], length: int) -> list[str]:
    return [rng.choice(words) for _ in range(length)]


def check_clipped_precision(
    fn: Callable[[Sequence[str], Sequence[Sequence[str]], int], tuple[int, int]],
    verbose: bool = True,
) -> CheckResult:
    """Check ``fn(hypothesis, references, n)`` against the reference solution.

    Cases: "the the the ..." against "the cat is on the mat" (clipping), several
    references (the largest count of each n-gram counts), orders 1 to 4, a
    hypothesis shorter than ``n`` (no n-grams: ``(0, 0)``), 60-word sentences drawn
    from 8 words (many repeats), and a 4-gram over 200 words.
    """
    rng = random.Random(9)
    few = ["the", "a", "cat", "dog", "is", "on", "mat", "."]
    many = [f"w{i}" for i in range(50)]
    the7 = ["the"] * 7
    mat = ["the", "cat", "is", "on", "the", "mat"]
    cases = [Case("'the' x 7 against 'the cat is on the mat', n=1", (the7, [mat], 1))]
    hyp = ["the", "cat", "the", "cat", "on", "the", "mat"]
    refs = [mat, ["there", "is", "a", "cat", "on", "the", "mat"]]
    cases += [Case(f"two references, n={n}", (hyp, refs, n)) for n in (1, 2, 3, 4)]
    cases.append(Case("a 2-word hypothesis, n=3", (["the", "cat"], refs, 3)))
    for n in (1, 2, 4):
        long = _sentence(rng, few, 60)
        refs = [_sentence(rng, few, 55), _sentence(rng, few, 64)]
        cases.append(Case(f"60 words from 8, two references, n={n}", (long, refs, n)))
    long = _sentence(rng, many, 200)
    ref = long[:120] + _sentence(rng, many, 80)
    cases.append(Case("200 words from 50, n=4", (long, [ref], 4)))
    return run_cases(
        "clipped_precision", fn, solution_clipped_precision, cases, verbose=verbose
    )


def _pairs(rng: random.Random, n: int, sentences: int) -> list[tuple[str, str]]:
    return [
        (f"zh{rng.randrange(sentences)}", f"en{rng.randrange(sentences)}")
        for _ in range(n)
    ]


def check_group_ids(
    fn: Callable[[Sequence[tuple[str, str]]], list[int]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(pairs)`` against :func:`solution_group_ids`.

    Cases: pairs that share nothing; a pair sharing only its English side; a chain
    that joins groups late (the first and last pair meet only through the middle);
    a Chinese sentence that equals an English one (``"OK"`` on both sides: still two
    different sentences); 5,000 random pairs over 4,000 sentences (long chains).
    """
    rng = random.Random(10)
    chain = [(f"z{i}", f"e{i}") for i in range(6)] + [
        (f"z{i + 1}", f"e{i}") for i in range(5)
    ]
    rng.shuffle(chain)
    cases = [
        Case("3 pairs sharing nothing", ([("a", "A"), ("b", "B"), ("c", "C")],)),
        Case(
            "two pairs share their English sentence",
            ([("你好", "Hi."), ("嗨", "Hi."), ("再见", "Bye.")],),
        ),
        Case("a shuffled chain of 11 pairs", (chain,)),
        Case(
            "'OK' as a Chinese and as an English sentence",
            ([("OK", "Fine."), ("好", "OK"), ("好", "Good.")],),
        ),
        Case("300 pairs over 400 sentences", (_pairs(rng, 300, 400),)),
        Case("5,000 pairs over 4,000 sentences", (_pairs(rng, 5000, 4000),)),
    ]
    return run_cases("group_ids", fn, solution_group_ids, cases, verbose=verbose)
