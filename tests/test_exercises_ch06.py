"""Chapter 6 checkers: each accepts the reference and a differently written correct
answer, says "not attempted" for a stub, and rejects wrong answers of several kinds
with a message that names the case."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    on_meta,
    passes,
)

from lm_course.exercises import ch06_translation as ex
from lm_course.translation.data import group_pairs

ALL_CHECKS = [
    (ex.check_beam_step, ex.solution_beam_step),
    (ex.check_pick_final, ex.solution_pick_final),
    (ex.check_clipped_precision, ex.solution_clipped_precision),
    (ex.check_group_ids, ex.solution_group_ids),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


def test_an_answer_on_another_device_is_reported() -> None:
    def beam_on_meta(scores, logp):
        return tuple(t.to("meta") for t in ex.solution_beam_step(scores, logp))

    assert failed(ex.check_beam_step(beam_on_meta, verbose=False), "got one on meta")
    pick = on_meta(ex.solution_pick_final)
    assert failed(ex.check_pick_final(pick, verbose=False), "got one on meta")


# ------------------------------------------------------------------ beam_step


def test_beam_step_accepts_a_loop_over_sentences() -> None:
    def loop(scores, logp):
        out = [], [], []
        for b in range(logp.size(0)):
            total = scores[b][:, None] + logp[b]  # (k, vocab)
            values, flat = total.flatten().sort(descending=True)
            k = scores.size(1)
            out[0].append(values[:k])
            out[1].append(torch.div(flat[:k], logp.size(2), rounding_mode="floor"))
            out[2].append(flat[:k] % logp.size(2))
        return tuple(torch.stack(part) for part in out)

    assert passes(ex.check_beam_step, loop)


def test_beam_step_rejects_top_k_per_hypothesis_logp_alone_and_floats() -> None:
    check = ex.check_beam_step

    def per_hypothesis(scores, logp):  # the k best words of hypothesis 0 only
        total = scores[..., None] + logp
        best, word = total[:, 0].topk(scores.size(1), dim=-1)
        return best, torch.zeros_like(word), word

    def forgets_scores(scores, logp):  # ranks by the new word's probability alone
        b, k, v = logp.shape
        _, flat = logp.reshape(b, k * v).topk(k, dim=-1)
        best = (scores[..., None] + logp).reshape(b, -1).gather(1, flat)
        return best, flat // v, flat % v

    def float_indices(scores, logp):
        best, beam, word = ex.solution_beam_step(scores, logp)
        return best, beam.float(), word

    assert failed(check(per_hypothesis, verbose=False), "2 hypotheses")
    assert failed(check(forgets_scores, verbose=False), "beam")
    assert failed(check(float_indices, verbose=False), "dtype")


# ------------------------------------------------------------------ pick_final


def test_pick_final_accepts_a_log_space_answer() -> None:
    def log_space(scores, lengths, alpha):
        return (scores / torch.exp(alpha * torch.log(lengths.to(scores.dtype)))).argmax(
            -1
        )

    assert passes(ex.check_pick_final, log_space)


def test_pick_final_rejects_ignoring_alpha_multiplying_and_argmin() -> None:
    check = ex.check_pick_final
    plain = lambda scores, lengths, alpha: scores.argmax(-1)  # noqa: E731
    times = lambda s, n, a: (s * n.to(s.dtype) ** a).argmax(-1)  # noqa: E731
    argmin = lambda s, n, a: (s / n.to(s.dtype) ** a).argmin(-1)  # noqa: E731
    assert failed(check(plain, verbose=False), "alpha 1")
    assert failed(check(times, verbose=False), "alpha")
    assert failed(check(argmin, verbose=False), "alpha 0")


# ------------------------------------------------------------------ clipped_precision


def test_clipped_precision_accepts_a_loop_with_max_over_references() -> None:
    def loops(hyp, refs, n):
        grams = [tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1)]
        matches = 0
        for g in set(grams):
            best = max(
                sum(tuple(r[i : i + n]) == g for i in range(len(r) - n + 1))
                for r in refs
            )
            matches += min(grams.count(g), best)
        return matches, len(grams)

    assert passes(ex.check_clipped_precision, loops)


def test_clipped_precision_rejects_unclipped_summed_refs_and_a_ratio() -> None:
    check = ex.check_clipped_precision

    def ngrams(tokens, n):
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    def unclipped(hyp, refs, n):
        seen = set().union(*(ngrams(r, n) for r in refs))
        counts = ngrams(hyp, n)
        return sum(c for g, c in counts.items() if g in seen), sum(counts.values())

    def summed_refs(hyp, refs, n):  # adds the references' counts instead of the max
        total = sum((ngrams(r, n) for r in refs), Counter())
        counts = ngrams(hyp, n)
        return sum(min(c, total[g]) for g, c in counts.items()), sum(counts.values())

    def ratio(hyp, refs, n):
        m, t = ex.solution_clipped_precision(hyp, refs, n)
        return m / max(t, 1)

    assert failed(check(unclipped, verbose=False), "'the' x 7")
    assert failed(check(summed_refs, verbose=False), "two references")
    assert failed(check(ratio, verbose=False), "'the' x 7")


# ------------------------------------------------------------------ group_ids


def test_group_ids_accepts_the_package_grouping_renumbered() -> None:
    def from_groups(pairs):
        number = {}
        for i, group in enumerate(group_pairs(list(pairs))):
            for pair in group:
                number[pair] = i
        return [number[p] for p in pairs]

    assert passes(ex.check_group_ids, from_groups)


def test_group_ids_rejects_one_hop_mixed_namespaces_and_bad_numbering() -> None:
    check = ex.check_group_ids

    def one_hop(pairs):  # joins pairs that share a sentence directly, no chains
        ids: list[int] = []
        for i, (zh, en) in enumerate(pairs):
            for j in range(i):
                if pairs[j][0] == zh or pairs[j][1] == en:
                    ids.append(ids[j])
                    break
            else:
                ids.append(max(ids, default=-1) + 1)
        return ids

    def mixed(pairs):  # "OK" in Chinese and "OK" in English become one node
        parent = {}

        def root(x):
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for zh, en in pairs:
            parent[root(zh)] = root(en)
        numbers = {}
        return [numbers.setdefault(root(zh), len(numbers)) for zh, _ in pairs]

    def one_based(pairs):
        return [i + 1 for i in ex.solution_group_ids(pairs)]

    assert failed(check(one_hop, verbose=False), "chain")
    assert failed(check(mixed, verbose=False), "'OK'")
    assert failed(check(one_based, verbose=False), "3 pairs")
