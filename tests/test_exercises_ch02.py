"""Chapter 2 checkers: accept the reference, say "not attempted" for a stub, and reject
the mistakes readers really make, with a message that points at the case."""

from __future__ import annotations

import math

import pytest
import torch
from exercise_helpers import assert_reference_passes_and_stub_is_not_attempted, failed

from lm_course import attention
from lm_course.exercises import ch02_attention as ex

ALL_CHECKS = [
    (ex.check_stable_softmax, ex.solution_stable_softmax),
    (ex.check_attention, ex.solution_attention),
    (ex.check_causal_mask, ex.solution_causal_mask),
    (ex.check_split_heads, ex.solution_split_heads),
    (ex.check_merge_heads, ex.solution_merge_heads),
    (ex.check_sliding_window_mask, ex.solution_sliding_window_mask),
    (ex.check_alibi_bias, ex.solution_alibi_bias),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


# ------------------------------------------------------------------ softmax


def test_softmax_rejects_the_naive_version_on_large_scores() -> None:
    def naive(x, dim=-1):
        return x.exp() / x.exp().sum(dim=dim, keepdim=True)

    result = ex.check_stable_softmax(naive, verbose=False)
    assert failed(result, "large scores", "non-finite")


def test_softmax_rejects_a_hard_coded_axis_and_the_builtin() -> None:
    def last_axis_only(x, dim=-1):
        e = (x - x.amax(-1, keepdim=True)).exp()
        return e / e.sum(-1, keepdim=True)

    assert failed(ex.check_stable_softmax(last_axis_only, verbose=False), "dim=0")

    def builtin(x, dim=-1):
        return torch.softmax(x, dim=dim)

    assert failed(
        ex.check_stable_softmax(builtin, verbose=False), "write softmax yourself"
    )
    # The built-in is restored afterwards.
    assert torch.allclose(torch.softmax(torch.zeros(2), -1), torch.full((2,), 0.5))
    assert torch.allclose(torch.zeros(2).softmax(-1), torch.full((2,), 0.5))


def test_softmax_rejects_subtracting_the_min() -> None:
    def minus_min(x, dim=-1):
        e = (x - x.amin(dim, keepdim=True)).exp()
        return e / e.sum(dim, keepdim=True)

    assert failed(ex.check_stable_softmax(minus_min, verbose=False), "non-finite")


# ------------------------------------------------------------------ attention


def test_attention_matches_the_package() -> None:
    q, k, v = torch.randn(3, 5, 8), torch.randn(3, 7, 8), torch.randn(3, 7, 2)
    out, _ = attention.scaled_dot_product_attention(q[None], k[None], v[None])
    assert torch.allclose(ex.solution_attention(q, k, v), out[0], atol=1e-6)


def test_attention_rejects_missing_or_wrong_scaling() -> None:
    def unscaled(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v

    def by_d_k(q, k, v, mask=None):
        return ex.solution_attention(q * math.sqrt(q.size(-1)) / q.size(-1), k, v, mask)

    assert failed(ex.check_attention(unscaled, verbose=False), "values differ")
    assert failed(ex.check_attention(by_d_k, verbose=False), "values differ")


def test_attention_rejects_softmax_over_queries_and_swapped_q_k() -> None:
    def over_queries(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -2) @ v

    def k_times_q(q, k, v, mask=None):
        s = k @ q.transpose(-2, -1) / math.sqrt(q.size(-1))
        return torch.softmax(s, -1) @ v

    assert failed(ex.check_attention(over_queries, verbose=False))
    assert failed(ex.check_attention(k_times_q, verbose=False), "values differ")


def test_attention_rejects_masking_after_the_softmax() -> None:
    def mask_after(q, k, v, mask=None):
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1)
        if mask is not None:
            w = w * mask  # the rows no longer sum to 1
        return w @ v

    assert failed(
        ex.check_attention(mask_after, verbose=False), "causal mask", "values differ"
    )


# ------------------------------------------------------------------ masks


def test_causal_mask_matches_the_package() -> None:
    for n in (1, 3, 6):
        assert torch.equal(ex.solution_causal_mask(n), attention.causal_mask(n))


def test_causal_mask_rejects_shifted_transposed_and_float_masks() -> None:
    def shifted(n):
        return torch.ones(n, n, dtype=torch.bool).tril(-1)

    def transposed(n):
        return torch.ones(n, n, dtype=torch.bool).triu()

    def as_float(n):
        return torch.ones(n, n).tril()

    assert failed(ex.check_causal_mask(shifted, verbose=False), "n = 1")
    assert failed(ex.check_causal_mask(transposed, verbose=False), "n = 2")
    assert failed(ex.check_causal_mask(as_float, verbose=False), "boolean")


def test_sliding_window_matches_the_package() -> None:
    for n, w in ((5, 2), (6, 1), (4, 9)):
        assert torch.equal(
            ex.solution_sliding_window_mask(n, w), attention.sliding_window_mask(n, w)
        )


def test_sliding_window_rejects_off_by_one_and_non_causal() -> None:
    def one_too_many(n, window):
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return (j <= i) & (i - j <= window)

    def symmetric(n, window):
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return (i - j).abs() < window

    assert failed(
        ex.check_sliding_window_mask(one_too_many, verbose=False), "window = 1"
    )
    assert failed(ex.check_sliding_window_mask(symmetric, verbose=False), "window = 2")


# ------------------------------------------------------------------ heads


def test_split_and_merge_match_the_package() -> None:
    x = torch.randn(2, 5, 12)
    assert torch.equal(ex.solution_split_heads(x, 3), attention.split_heads(x, 3))
    assert torch.equal(ex.solution_merge_heads(ex.solution_split_heads(x, 4)), x)


def test_split_heads_rejects_reshape_without_transpose_and_wrong_axis_order() -> None:
    def no_transpose(x, n_heads):
        b, s, d = x.shape
        return x.reshape(b, n_heads, s, d // n_heads)

    def heads_last(x, n_heads):  # cuts d_model into (d_head, n_heads): strided heads
        b, s, d = x.shape
        return x.view(b, s, d // n_heads, n_heads).permute(0, 3, 1, 2)

    result = ex.check_split_heads(no_transpose, verbose=False)
    assert failed(
        result, "arange(8)", "expected tensor of shape (1, 2, 2, 2) [0, 1, 4, 5"
    )
    assert failed(ex.check_split_heads(heads_last, verbose=False), "arange(8)")


def test_merge_heads_rejects_reshape_without_transpose() -> None:
    def no_transpose(x):
        b, h, s, dh = x.shape
        return x.reshape(b, s, h * dh)

    def sums_heads(x):
        return x.sum(1)

    assert failed(ex.check_merge_heads(no_transpose, verbose=False), "arange(8)")
    assert failed(
        ex.check_merge_heads(sums_heads, verbose=False), "expected shape (1, 2, 4)"
    )


# ------------------------------------------------------------------ ALiBi


def test_alibi_matches_the_package() -> None:
    from lm_course.positional import alibi_bias

    for h in (1, 2, 4, 8):
        assert torch.allclose(ex.solution_alibi_bias(h, 5), alibi_bias(h, 5))


def test_alibi_rejects_wrong_sign_reversed_slopes_and_signed_distance() -> None:
    def positive(n_heads, seq_len):
        return -ex.solution_alibi_bias(n_heads, seq_len)

    def reversed_slopes(n_heads, seq_len):
        return ex.solution_alibi_bias(n_heads, seq_len).flip(0)

    def signed(n_heads, seq_len):
        slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1) / n_heads)
        pos = torch.arange(seq_len)
        return -slopes[:, None, None] * (pos[:, None] - pos[None, :]).float()

    assert failed(ex.check_alibi_bias(positive, verbose=False), "1 head")
    assert failed(ex.check_alibi_bias(reversed_slopes, verbose=False), "2 heads")
    assert failed(ex.check_alibi_bias(signed, verbose=False), "1 head")
