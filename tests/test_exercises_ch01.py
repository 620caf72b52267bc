"""Chapter 1 checkers: accept the reference, say "not attempted" for a stub, reject the
mistakes readers really make with a message that points at the case, and agree with the
package's own tokenizers and n-gram model."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    stub,
)

from lm_course.exercises import ch01_background as ex
from lm_course.models.ngram import NGramModel
from lm_course.tokenizers import BPETokenizer, CharTokenizer


def check_chars(encode, decode=ex.solution_char_decode, verbose=False):
    return ex.check_char_tokenizer(encode, decode, verbose=verbose)


ALL_CHECKS = [
    (ex.check_perplexity, ex.solution_perplexity),
    (check_chars, ex.solution_char_encode),
    (ex.check_addk_bigram, ex.solution_addk_bigram),
    (ex.check_bpe_merge_step, ex.solution_bpe_merge_step),
    (ex.check_interpolated_trigram, ex.solution_interpolated_trigram),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


def test_passing_result_is_printed(capsys) -> None:
    ex.check_char_tokenizer(ex.solution_char_encode, ex.solution_char_decode)
    assert capsys.readouterr().out.startswith("[PASSED] char_tokenizer")


# ------------------------------------------------------------------ perplexity


def test_perplexity_matches_the_ngram_model() -> None:
    ids = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0])
    model = NGramModel(order=2, vocab_size=3, add_k=0.5).fit(ids[:8])
    test = ids[6:]
    log_probs = torch.tensor(
        [
            [
                math.log(model.prob(test[t - 1 : t], int(test[t])))
                for t in range(1, len(test))
            ]
        ],
        dtype=torch.float64,
    )
    got = ex.solution_perplexity(
        log_probs, torch.ones_like(log_probs, dtype=torch.bool)
    )
    assert got.item() == pytest.approx(model.perplexity(test), rel=1e-9)


def test_perplexity_rejects_averaging_over_padding_and_a_missing_minus() -> None:
    def over_everything(log_probs, mask):
        return torch.exp(-log_probs.mean(dim=-1))

    def no_minus(log_probs, mask):
        return torch.exp((log_probs * mask).sum(-1) / mask.sum(-1))

    assert failed(
        ex.check_perplexity(over_everything, verbose=False), "padding filled with -30"
    )
    assert failed(
        ex.check_perplexity(no_minus, verbose=False), "uniform model", "expected"
    )


def test_perplexity_rejects_base_two() -> None:
    def base_two(log_probs, mask):
        return 2 ** (-(log_probs * mask).sum(-1) / mask.sum(-1))

    assert failed(
        ex.check_perplexity(base_two, verbose=False), "uniform model", "values differ"
    )


# ------------------------------------------------------------------ character tokenizer


def test_char_solution_matches_the_package() -> None:
    corpus = "First Citizen:\nBefore we proceed, 学而时习之。"
    tok = CharTokenizer.from_text(corpus)
    for text in ["Before", "学而\n", "", corpus]:
        ids = ex.solution_char_encode(text, corpus)
        assert ids == tok.encode(text)
        assert ex.solution_char_decode(ids, corpus) == text


def test_char_rejects_unsorted_alphabet_and_ids_from_one() -> None:
    def first_seen_order(text, corpus):
        stoi = {ch: i for i, ch in enumerate(dict.fromkeys(corpus))}
        return [stoi[ch] for ch in text]

    def from_one(text, corpus):
        return [i + 1 for i in ex.solution_char_encode(text, corpus)]

    assert failed(check_chars(first_seen_order), "char_encode", "'hold'", "expected")
    assert failed(check_chars(from_one), "char_encode", "'hold'")


def test_char_checks_decode_too() -> None:
    def decode_unsorted(ids, corpus):
        itos = list(dict.fromkeys(corpus))
        return "".join(itos[i] for i in ids)

    def decode_list(ids, corpus):
        return list(ex.solution_char_decode(ids, corpus))

    assert failed(
        check_chars(ex.solution_char_encode, decode_unsorted), "char_decode", "ids of"
    )
    assert failed(check_chars(ex.solution_char_encode, decode_list), "char_decode")
    result = check_chars(stub, ex.solution_char_decode)
    assert result.status == "not attempted"


# ------------------------------------------------------------------ add-k bigram


def test_addk_matches_the_ngram_model() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (200,), generator=g)
    ids[ids == 4] = 5  # token 4 never occurs: an unseen context
    counts = ex.counts_from_ids(ids, 2, 6)
    assert counts.sum() == len(ids) - 1
    for k in [0.0, 0.01, 1.0]:
        probs = ex.solution_addk_bigram(counts, k)
        model = NGramModel(order=2, vocab_size=6, add_k=k).fit(ids)
        for context in range(6):
            assert torch.allclose(probs[context], model.next_distribution([context]))
        assert torch.allclose(probs.sum(-1), torch.ones(6, dtype=torch.float64))


def test_addk_rejects_forgetting_kv_and_normalising_columns() -> None:
    def no_kv(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(-1, keepdim=True) + k)

    def columns(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(0, keepdim=True) + k * counts.shape[0])

    assert failed(
        ex.check_addk_bigram(no_kv, verbose=False), "k = 1 (Laplace)", "values differ"
    )
    assert failed(ex.check_addk_bigram(columns, verbose=False), "k = 1 (Laplace)")


def test_addk_rejects_nan_for_an_unseen_context() -> None:
    def plain(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(-1, keepdim=True) + k * counts.shape[-1])

    assert failed(
        ex.check_addk_bigram(plain, verbose=False),
        "row 2 is all zeros, k = 0",
        "non-finite",
    )


# ------------------------------------------------------------------ BPE merge step


@pytest.mark.parametrize(
    "word", ["aaabdaaabac", "mississippi", "abracadabra", "thethe"]
)
def test_bpe_merge_step_matches_the_package(word: str) -> None:
    # A word with no spaces is one pre-split chunk, so the package's first merge is the same.
    tok = BPETokenizer.train(word, vocab_size=258)
    ids = list(word.encode())
    pair, ids = ex.solution_bpe_merge_step(ids, 256)
    assert tok.merges[0] == (pair, 256)
    pair2, ids = ex.solution_bpe_merge_step(ids, 257)
    assert tok.merges[1] == (pair2, 257)
    assert tok.encode(word) == ids


def test_bpe_rejects_most_common_ties() -> None:
    def most_common_merge(ids, new_id):
        pair = Counter(zip(ids, ids[1:])).most_common(1)[0][0]
        out, i = [], 0
        while i < len(ids):
            if tuple(ids[i : i + 2]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return pair, out

    assert failed(
        ex.check_bpe_merge_step(most_common_merge, verbose=False),
        "the smaller pair (1, 2) wins",
        "(the most frequent pair)",
        "expected (1, 2)",
    )


def test_bpe_rejects_overlapping_and_first_only_merges() -> None:
    def overlapping(ids, new_id):
        pair = ex.solution_bpe_merge_step(ids, new_id)[0]
        out = []
        for i in range(len(ids)):
            if tuple(ids[i : i + 2]) == pair:
                out.append(new_id)
            elif i == 0 or tuple(ids[i - 1 : i + 1]) != pair:
                out.append(ids[i])
        return pair, out

    def first_only(ids, new_id):
        pair = ex.solution_bpe_merge_step(ids, new_id)[0]
        for i in range(len(ids) - 1):
            if tuple(ids[i : i + 2]) == pair:
                return pair, ids[:i] + [new_id] + ids[i + 2 :]
        return pair, ids

    assert failed(
        ex.check_bpe_merge_step(overlapping, verbose=False),
        "aaabdaaabac",
        "(the merged ids)",
        "expected",
    )
    assert failed(
        ex.check_bpe_merge_step(first_only, verbose=False),
        "aaabdaaabac",
        "(the merged ids)",
    )


def test_bpe_reports_a_wrong_return_type() -> None:
    def only_ids(ids, new_id):
        return ex.solution_bpe_merge_step(ids, new_id)[1]

    assert failed(
        ex.check_bpe_merge_step(only_ids, verbose=False), "tuple (pair, merged_ids)"
    )


# ------------------------------------------------------------------ interpolated trigram


def test_interpolated_trigram_matches_the_ngram_models() -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 4, (60,), generator=g)
    counts = ex.counts_from_ids(ids, 3, 4)
    trigram = ex.solution_interpolated_trigram(counts, (0.0, 0.0, 1.0))
    model = NGramModel(order=3, vocab_size=4, add_k=0.0).fit(ids)
    for u in range(4):
        for v in range(4):
            assert torch.allclose(trigram[u, v], model.next_distribution([u, v]))
    mixed = ex.solution_interpolated_trigram(counts, (0.2, 0.3, 0.5))
    assert torch.allclose(mixed.sum(-1), torch.ones(4, 4, dtype=torch.float64))


def test_interpolated_rejects_nan_and_reversed_lambdas() -> None:
    def no_unseen_rule(counts, lambdas):
        counts = counts.double()
        l1, l2, l3 = lambdas
        c2 = counts.sum(0)
        c1 = counts.sum((0, 1))
        return (
            l1 * c1 / c1.sum()
            + l2 * c2 / c2.sum(-1, keepdim=True)
            + l3 * counts / counts.sum(-1, keepdim=True)
        )

    def reversed_lambdas(counts, lambdas):
        return ex.solution_interpolated_trigram(counts, tuple(reversed(lambdas)))

    assert failed(
        ex.check_interpolated_trigram(no_unseen_rule, verbose=False),
        "unseen contexts",
        "non-finite",
    )
    assert failed(
        ex.check_interpolated_trigram(reversed_lambdas, verbose=False),
        "lambdas (1, 0, 0)",
    )


def test_interpolated_rejects_bigram_from_the_wrong_axis() -> None:
    def wrong_axis(counts, lambdas):
        counts = counts.double()
        l1, l2, l3 = lambdas
        p1 = ex._ml_or_uniform(counts.sum((0, 1)))
        p2 = ex._ml_or_uniform(counts.sum(2))  # C(u v): the context pair, not C(v w)
        return l1 * p1 + l2 * p2 + l3 * ex._ml_or_uniform(counts)

    assert failed(
        ex.check_interpolated_trigram(wrong_axis, verbose=False), "bigram estimate"
    )


def test_counts_from_ids_rejects_short_input() -> None:
    with pytest.raises(ValueError, match="at least order=3"):
        ex.counts_from_ids([1, 2], 3, 4)
