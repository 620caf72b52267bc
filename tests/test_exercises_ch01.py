"""Chapter 1 checkers: each accepts the reference and differently written correct
answers, says "not attempted" for a stub, rejects wrong answers of several kinds
(too-tidy inputs, type and mutation, reporting) with a message that names the case, and
agrees with the package's own tokenizers and n-gram model."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    last_case_only_raises,
    on_meta,
    passes,
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
TENSOR_CHECKS = [ALL_CHECKS[i] for i in (0, 2, 4)]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


@pytest.mark.parametrize(("check", "solution"), TENSOR_CHECKS)
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


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


def test_perplexity_accepts_boolean_indexing_and_nanmean() -> None:
    def per_row(log_probs, mask):
        return torch.stack(
            [(-row[keep].mean()).exp() for row, keep in zip(log_probs, mask)]
        )

    def nanmean(log_probs, mask):
        return torch.exp(-log_probs.masked_fill(~mask, math.nan).nanmean(dim=-1))

    assert passes(ex.check_perplexity, per_row)
    assert passes(ex.check_perplexity, nanmean)


def test_perplexity_rejects_padding_counted_nan_padding_and_left_padding() -> None:
    def over_everything(log_probs, mask):
        return torch.exp(-log_probs.mean(dim=-1))

    def times_mask(log_probs, mask):  # -inf * 0 = nan
        return torch.exp(-(log_probs * mask).sum(-1) / mask.sum(-1))

    def first_n(log_probs, mask):  # assumes the padding is on the right
        n = mask.sum(-1)
        return torch.stack([(-row[:k].mean()).exp() for row, k in zip(log_probs, n)])

    check = ex.check_perplexity
    assert failed(check(over_everything, verbose=False), "padding filled with -30")
    assert failed(check(times_mask, verbose=False), "filled with -inf", "non-finite")
    assert failed(check(first_n, verbose=False), "padded on the left")


def test_perplexity_rejects_underflow_mutation_dtype_and_python_lists() -> None:
    def product(log_probs, mask):  # exact on short sequences, 0 ** (-1/N) on long ones
        probs = torch.where(mask, log_probs.exp(), torch.ones_like(log_probs))
        return probs.prod(-1) ** (-1 / mask.sum(-1))

    def zero_padding_in_place(log_probs, mask):
        log_probs[~mask] = 0.0
        return torch.exp(-log_probs.sum(-1) / mask.sum(-1))

    def in_float64(log_probs, mask):
        return ex.solution_perplexity(log_probs.double(), mask)

    def as_list(log_probs, mask):
        return ex.solution_perplexity(log_probs, mask).tolist()

    check = ex.check_perplexity
    assert failed(check(product, verbose=False), "5000", "non-finite value (inf)")
    assert failed(
        check(zero_padding_in_place, verbose=False), "changed its argument `log_probs`"
    )
    assert failed(check(in_float64, verbose=False), "expected dtype torch.float32")
    assert failed(check(as_list, verbose=False), "expected a tensor, got a list")


def test_perplexity_reports_a_partial_answer_as_failing() -> None:
    partial = last_case_only_raises(ex.solution_perplexity, calls_before=2)
    assert failed(ex.check_perplexity(partial, verbose=False), "NotImplementedError")


# ------------------------------------------------------------------ character tokenizer


def test_char_solution_matches_the_package() -> None:
    corpus = "First Citizen:\nBefore we proceed, 学而时习之。"
    tok = CharTokenizer.from_text(corpus)
    for text in ["Before", "学而\n", "", corpus]:
        ids = ex.solution_char_encode(text, corpus)
        assert ids == tok.encode(text)
        assert ex.solution_char_decode(ids, corpus) == text


def test_char_accepts_a_list_index_and_a_join() -> None:
    def encode(text, corpus):
        alphabet = sorted(set(corpus))
        return [alphabet.index(ch) for ch in text]

    def decode(ids, corpus):
        alphabet = "".join(sorted(set(corpus)))
        return "".join(map(alphabet.__getitem__, ids))

    assert check_chars(encode, decode).passed


def test_char_rejects_an_alphabet_cut_at_64() -> None:
    def first_64(text, corpus):  # a fixed table of 64 characters
        stoi = {ch: i for i, ch in enumerate(sorted(set(corpus))[:64])}
        return [stoi[ch] for ch in text]

    assert failed(check_chars(first_64), "alphabet of 84", "raised KeyError")


def test_char_rejects_unsorted_alphabet_ids_from_one_and_byte_ids() -> None:
    def first_seen_order(text, corpus):
        stoi = {ch: i for i, ch in enumerate(dict.fromkeys(corpus))}
        return [stoi[ch] for ch in text]

    def from_one(text, corpus):
        return [i + 1 for i in ex.solution_char_encode(text, corpus)]

    def bytes_alphabet(text, corpus):  # right for ASCII, wrong past it
        alphabet = sorted(set(corpus.encode()))
        return [alphabet.index(b) for b in text.encode()]

    assert failed(check_chars(first_seen_order), "char_encode", "'hold'", "expected")
    assert failed(check_chars(from_one), "char_encode", "'hold'")
    assert failed(check_chars(bytes_alphabet), "char_encode", "Analects")


def test_char_rejects_generators_tensors_and_a_list_from_decode() -> None:
    def generator(text, corpus):
        stoi = {ch: i for i, ch in enumerate(sorted(set(corpus)))}
        return (stoi[ch] for ch in text)

    def tensor(text, corpus):
        return torch.tensor(ex.solution_char_encode(text, corpus))

    def decode_list(ids, corpus):
        return list(ex.solution_char_decode(ids, corpus))

    def decode_unsorted(ids, corpus):
        itos = list(dict.fromkeys(corpus))
        return "".join(itos[i] for i in ids)

    assert failed(check_chars(generator), "expected a list, got a generator")
    assert failed(check_chars(tensor), "expected a list, got a tensor")
    assert failed(
        check_chars(ex.solution_char_encode, decode_list),
        "char_decode",
        "expected a str, got a list",
    )
    assert failed(
        check_chars(ex.solution_char_encode, decode_unsorted), "char_decode", "ids of"
    )
    assert check_chars(stub, ex.solution_char_decode).status == "not attempted"
    assert check_chars(ex.solution_char_encode, stub).status == "not attempted"


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


def test_addk_accepts_float32_and_a_nan_fix() -> None:
    def float32(counts, k):
        counts = counts.float() + k
        totals = counts.sum(-1, keepdim=True)
        return torch.where(totals > 0, counts / totals, 1.0 / counts.shape[-1])

    def fix_nan(counts, k):
        probs = (counts + k) / (counts.sum(-1, keepdim=True) + k * len(counts))
        return probs.nan_to_num(nan=1.0 / len(counts))

    assert passes(ex.check_addk_bigram, float32)
    assert passes(ex.check_addk_bigram, fix_nan)


def test_addk_rejects_forgetting_kv_columns_and_nan_for_unseen() -> None:
    def no_kv(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(-1, keepdim=True) + k)

    def columns(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(0, keepdim=True) + k * counts.shape[0])

    def plain(counts, k):
        counts = counts.double()
        return (counts + k) / (counts.sum(-1, keepdim=True) + k * counts.shape[-1])

    check = ex.check_addk_bigram
    assert failed(check(no_kv, verbose=False), "k = 1 (Laplace)", "values differ")
    assert failed(check(columns, verbose=False), "k = 1 (Laplace)")
    assert failed(
        check(plain, verbose=False), "row 2 is all zeros, k = 0", "non-finite"
    )


def test_addk_rejects_patched_counts_half_precision_and_a_clamped_total() -> None:
    def patch_unseen_rows(counts, k):  # marks unseen contexts in the caller's table
        counts[counts.sum(-1) == 0] = 1
        return ex.solution_addk_bigram(counts, k)

    def half(counts, k):
        return ex.solution_addk_bigram(counts, k).half()

    def clamped(counts, k):  # an unseen row with k = 0 becomes 0, not uniform
        numer = counts.double() + k
        return numer / numer.sum(-1, keepdim=True).clamp(min=1)

    check = ex.check_addk_bigram
    assert failed(
        check(patch_unseen_rows, verbose=False),
        "row 2 is all zeros",
        "changed its argument `counts`",
    )
    assert failed(check(half, verbose=False), "got torch.float16")
    assert failed(check(clamped, verbose=False), "uniform 1/V")


# ------------------------------------------------------------------ BPE merge step


@pytest.mark.parametrize(
    "word", ["aaabdaaabac", "mississippi", "abracadabra", "thethe"]
)
def test_bpe_merge_step_matches_the_package(word: str) -> None:
    # A word with no spaces is one pre-split chunk: the package's first merge agrees.
    tok = BPETokenizer.train(word, vocab_size=258)
    ids = list(word.encode())
    pair, ids = ex.solution_bpe_merge_step(ids, 256)
    assert tok.merges[0] == (pair, 256)
    pair2, ids = ex.solution_bpe_merge_step(ids, 257)
    assert tok.merges[1] == (pair2, 257)
    assert tok.encode(word) == ids


def _merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if tuple(ids[i : i + 2]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def test_bpe_accepts_a_sort_by_count_then_pair() -> None:
    def by_sort(ids, new_id):
        counts = Counter(zip(ids, ids[1:]))
        pair = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]
        return pair, _merge(ids, pair, new_id)

    assert passes(ex.check_bpe_merge_step, by_sort)


def test_bpe_rejects_most_common_ties_and_counting_without_overlaps() -> None:
    def most_common(ids, new_id):
        pair = Counter(zip(ids, ids[1:])).most_common(1)[0][0]
        return pair, _merge(ids, pair, new_id)

    def without_overlaps(ids, new_id):  # counts like str.count: "aaaa" holds "aa" twice
        pairs = set(zip(ids, ids[1:]))
        counts = {p: len(_merge(ids, p, -1)) - len(ids) for p in pairs}
        pair = min(pairs, key=lambda p: (counts[p], p))
        return pair, _merge(ids, pair, new_id)

    assert failed(
        ex.check_bpe_merge_step(most_common, verbose=False),
        "the smaller pair (1, 2) wins",
        "pair: expected (1, 2), got (3, 1)",
    )
    assert failed(
        ex.check_bpe_merge_step(without_overlaps, verbose=False),
        "[7, 7, 7, 7, 1, 2, 1, 2, 9]",
        "pair: expected (7, 7), got (1, 2)",
    )


def test_bpe_rejects_overlapping_merges_a_256_table_and_in_place_edits() -> None:
    def overlapping(ids, new_id):
        pair = ex.solution_bpe_merge_step(ids, new_id)[0]
        out = []
        for i in range(len(ids)):
            if tuple(ids[i : i + 2]) == pair:
                out.append(new_id)
            elif i == 0 or tuple(ids[i - 1 : i + 1]) != pair:
                out.append(ids[i])
        return pair, out

    def byte_table(ids, new_id):  # a (256, 256) table of counts: bytes only
        table = torch.zeros(256, 256, dtype=torch.long)
        for a, b in zip(ids, ids[1:]):
            table[a, b] += 1
        a, b = divmod(int(table.flatten().argmax()), 256)
        return (a, b), _merge(ids, (a, b), new_id)

    def in_place(ids, new_id):
        pair = ex.solution_bpe_merge_step(ids, new_id)[0]
        i = 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == pair:
                ids[i : i + 2] = [new_id]
            i += 1
        return pair, ids

    check = ex.check_bpe_merge_step
    assert failed(check(overlapping, verbose=False), "aaabdaaabac", "merged: ")
    assert failed(check(byte_table, verbose=False), "ids up to 275", "IndexError")
    assert failed(check(in_place, verbose=False), "changed its argument `ids`")


def test_bpe_rejects_wrong_container_types() -> None:
    def only_ids(ids, new_id):
        return ex.solution_bpe_merge_step(ids, new_id)[1]

    def list_pair(ids, new_id):
        pair, merged = ex.solution_bpe_merge_step(ids, new_id)
        return list(pair), merged

    def tensor_ids(ids, new_id):
        pair, merged = ex.solution_bpe_merge_step(ids, new_id)
        return pair, torch.tensor(merged)

    check = ex.check_bpe_merge_step
    assert failed(check(only_ids, verbose=False), "expected a tuple, got a list")
    assert failed(check(list_pair, verbose=False), "pair: expected a tuple, got a list")
    assert failed(
        check(tensor_ids, verbose=False), "merged: expected a list, got a tensor"
    )


# ------------------------------------------------------------- interpolated trigram


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


def _estimate(counts):
    """Maximum likelihood along the last axis, uniform where nothing was counted."""
    totals = counts.sum(-1, keepdim=True)
    return torch.where(totals > 0, counts / totals, 1.0 / counts.shape[-1])


def test_interpolated_accepts_float32_and_explicit_broadcasting() -> None:
    def float32(counts, lambdas):
        counts = counts.float()
        l1, l2, l3 = lambdas
        p1 = _estimate(counts.sum((0, 1)))[None, None, :]
        p2 = _estimate(counts.sum(0))[None, :, :]
        return l1 * p1 + l2 * p2 + l3 * _estimate(counts)

    assert passes(ex.check_interpolated_trigram, float32)


def test_interpolated_rejects_nan_reversed_lambdas_and_wrong_axes() -> None:
    def no_unseen_rule(counts, lambdas):
        counts = counts.double()
        l1, l2, l3 = lambdas
        c2, c1 = counts.sum(0), counts.sum((0, 1))
        return (
            l1 * c1 / c1.sum()
            + l2 * c2 / c2.sum(-1, keepdim=True)
            + l3 * counts / counts.sum(-1, keepdim=True)
        )

    def reversed_lambdas(counts, lambdas):
        return ex.solution_interpolated_trigram(counts, tuple(reversed(lambdas)))

    def context_pair_counts(counts, lambdas):  # C(u v), not C(v w)
        counts = counts.double()
        l1, l2, l3 = lambdas
        p1, p2 = _estimate(counts.sum((0, 1))), _estimate(counts.sum(2))
        return l1 * p1 + l2 * p2 + l3 * _estimate(counts)

    check = ex.check_interpolated_trigram
    assert failed(check(no_unseen_rule, verbose=False), "unseen contexts", "non-finite")
    assert failed(check(reversed_lambdas, verbose=False), "lambdas (1, 0, 0)")
    assert failed(check(context_pair_counts, verbose=False), "bigram estimate")


def test_interpolated_rejects_a_fixed_vocabulary_half_precision_and_edits() -> None:
    def vocabulary_of_65(counts, lambdas):  # the chapter's alphabet, hard-coded
        l1, l2, l3 = lambdas
        counts = counts.double()
        uniform = torch.full_like(counts, 1 / 65)
        totals = counts.sum(-1, keepdim=True)
        p3 = torch.where(totals > 0, counts / totals, uniform)
        p2 = _estimate(counts.sum(0))
        return l1 * _estimate(counts.sum((0, 1))) + l2 * p2 + l3 * p3

    def half(counts, lambdas):
        return ex.solution_interpolated_trigram(counts, lambdas).half()

    def marks_unseen_in_place(counts, lambdas):
        counts[counts.sum(-1) == 0] = 1  # every context "seen" once of each token
        return ex.solution_interpolated_trigram(counts, lambdas)

    check = ex.check_interpolated_trigram
    assert failed(check(vocabulary_of_65, verbose=False), "unseen contexts")
    assert failed(check(half, verbose=False), "got torch.float16")
    assert failed(
        check(marks_unseen_in_place, verbose=False), "changed its argument `counts`"
    )


def test_counts_from_ids_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least order=3"):
        ex.counts_from_ids([1, 2], 3, 4)
    with pytest.raises(ValueError, match="ids"):
        ex.counts_from_ids([1, 2, 7], 2, 4)
    with pytest.raises(TypeError, match="order"):
        ex.counts_from_ids([1, 2, 3], 2.0, 4)
