"""Chapter 2 checkers: each accepts the reference and differently written correct
answers, says "not attempted" for a stub, and rejects wrong answers of several kinds
(too-tidy inputs, tolerance, built-ins, type and mutation, reporting) with a message
that names the case."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    last_case_only_raises,
    on_meta,
    passes,
)

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


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


# ------------------------------------------------------------------ softmax


def test_softmax_accepts_logsumexp_float64_inside_and_a_two_pass_max() -> None:
    def by_logsumexp(x, dim=-1):
        return (x - torch.logsumexp(x, dim, keepdim=True)).exp()

    def in_float64(x, dim=-1):
        x64 = x.double()
        e = (x64 - x64.max(dim, keepdim=True).values).exp()
        return (e / e.sum(dim, keepdim=True)).to(x.dtype)

    def moved_axis(x, dim=-1):
        y = x.movedim(dim, -1)
        e = torch.exp(y - y.max(-1, keepdim=True).values)
        return (e / e.sum(-1, keepdim=True)).movedim(-1, dim)

    for answer in (by_logsumexp, in_float64, moved_axis):
        assert passes(ex.check_stable_softmax, answer)


def test_softmax_rejects_overflow_and_one_max_for_the_whole_batch() -> None:
    def naive(x, dim=-1):
        return x.exp() / x.exp().sum(dim=dim, keepdim=True)

    def global_max(x, dim=-1):
        e = (x - x.max()).exp()
        return e / e.sum(dim, keepdim=True)

    def minus_min(x, dim=-1):
        e = (x - x.amin(dim, keepdim=True)).exp()
        return e / e.sum(dim, keepdim=True)

    def float32_only(x, dim=-1):  # exact in float32, but float16 overflows
        return ex.solution_stable_softmax(x, dim) if x.dtype != torch.half else naive(x)

    assert failed(ex.check_stable_softmax(naive, verbose=False), "large", "non-finite")
    assert failed(
        ex.check_stable_softmax(global_max, verbose=False),
        "row 1 around -1000",
        "non-finite value (nan)",
    )
    assert failed(ex.check_stable_softmax(minus_min, verbose=False), "non-finite")
    assert failed(
        ex.check_stable_softmax(float32_only, verbose=False), "float16", "non-finite"
    )


@pytest.mark.parametrize(
    "builtin",
    [
        lambda x, dim=-1: torch.softmax(x, dim=dim),
        lambda x, dim=-1: x.log_softmax(dim).exp(),
        lambda x, dim=-1: torch.special.softmax(x, dim),
        lambda x, dim=-1: F.softmin(-x, dim),
        lambda x, dim=-1: torch.nn.Softmax(dim)(x),
    ],
    ids=[
        "torch.softmax",
        "log_softmax.exp",
        "special.softmax",
        "softmin",
        "nn.Softmax",
    ],
)
def test_softmax_rejects_every_builtin_route(builtin) -> None:
    assert failed(
        ex.check_stable_softmax(builtin, verbose=False),
        "your function called",
        "write softmax yourself",
    )
    assert torch.allclose(torch.softmax(torch.zeros(2), -1), torch.full((2,), 0.5))


def test_softmax_rejects_in_place_float64_and_a_hard_coded_axis() -> None:
    def in_place(x, dim=-1):
        x -= x.amax(dim, keepdim=True)
        x.exp_()
        return x / x.sum(dim, keepdim=True)

    def float64_result(x, dim=-1):
        x = x.double()
        e = (x - x.amax(dim, keepdim=True)).exp()
        return e / e.sum(dim, keepdim=True)

    def last_axis_only(x, dim=-1):
        e = (x - x.amax(-1, keepdim=True)).exp()
        return e / e.sum(-1, keepdim=True)

    assert failed(
        ex.check_stable_softmax(in_place, verbose=False), "changed its argument `x`"
    )
    assert failed(
        ex.check_stable_softmax(float64_result, verbose=False),
        "expected dtype torch.float32, got torch.float64",
    )
    assert failed(ex.check_stable_softmax(last_axis_only, verbose=False), "dim=0")
    partial = last_case_only_raises(ex.solution_stable_softmax, calls_before=3)
    assert failed(
        ex.check_stable_softmax(partial, verbose=False),
        "very negative",
        "raised NotImplementedError",
    )


# ------------------------------------------------------------------ attention


def test_attention_matches_the_package() -> None:
    q, k, v = torch.randn(3, 5, 8), torch.randn(3, 7, 8), torch.randn(3, 7, 2)
    out, _ = attention.scaled_dot_product_attention(q[None], k[None], v[None])
    assert torch.allclose(ex.solution_attention(q, k, v), out[0], atol=1e-6)


def test_attention_accepts_where_scaled_queries_and_a_finite_fill() -> None:
    def by_where(q, k, v, mask=None):
        q = q / math.sqrt(q.shape[-1])
        scores = torch.einsum("...qd,...kd->...qk", q, k)
        if mask is not None:
            scores = torch.where(mask, scores, float("-inf"))
        return scores.softmax(-1) @ v

    def finite_fill(q, k, v, mask=None):
        scores = q @ k.mT * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return F.softmax(scores, dim=-1) @ v

    assert passes(ex.check_attention, by_where)
    assert passes(ex.check_attention, finite_fill)


def test_attention_rejects_wrong_scaling_and_softmax_over_queries() -> None:
    def unscaled(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v

    def by_sqrt_d_v(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1) / math.sqrt(v.size(-1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v

    def over_queries(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -2) @ v

    assert failed(ex.check_attention(unscaled, verbose=False), "values differ")
    assert failed(ex.check_attention(by_sqrt_d_v, verbose=False), "d_v = 3")
    assert failed(ex.check_attention(over_queries, verbose=False))


def test_attention_rejects_additive_masks_on_nan_padding_and_2d_only_code() -> None:
    def additive(q, k, v, mask=None):  # fine on tidy inputs, NaN on garbage padding
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            s = s + (~mask) * -1e9
        return torch.softmax(s, -1) @ v

    def renormalised(q, k, v, mask=None):
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1)
        if mask is not None:
            w = w * mask
            w = w / w.sum(-1, keepdim=True)
        return w @ v

    def matrices_only(q, k, v, mask=None):  # .t() takes matrices only
        s = q @ k.t() / math.sqrt(q.size(-1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v

    nan_case = "the padded keys hold NaN"
    assert failed(ex.check_attention(additive, verbose=False), nan_case, "non-finite")
    assert failed(ex.check_attention(renormalised, verbose=False), nan_case)
    assert failed(ex.check_attention(matrices_only, verbose=False), "a batch of 2")


def test_attention_rejects_in_place_scaling_builtins_and_float32_casts() -> None:
    def scales_in_place(q, k, v, mask=None):
        q /= math.sqrt(q.size(-1))
        return ex.solution_attention(q * math.sqrt(q.size(-1)), k, v, mask)

    def builtin(q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def always_float32(q, k, v, mask=None):
        return ex.solution_attention(q.float(), k.float(), v.float(), mask)

    assert failed(
        ex.check_attention(scales_in_place, verbose=False), "changed its argument `q`"
    )
    assert failed(
        ex.check_attention(builtin, verbose=False),
        "called scaled_dot_product_attention",
    )
    assert failed(
        ex.check_attention(always_float32, verbose=False),
        "float64 inputs",
        "expected dtype torch.float64",
    )


# ------------------------------------------------------------------ masks


def test_causal_mask_matches_the_package_and_accepts_other_spellings() -> None:
    for n in (1, 3, 6):
        assert torch.equal(ex.solution_causal_mask(n), attention.causal_mask(n))
    assert passes(
        ex.check_causal_mask, lambda n: torch.arange(n)[:, None] >= torch.arange(n)
    )
    assert passes(ex.check_causal_mask, lambda n: ~torch.ones(n, n).triu(1).bool())


def test_causal_mask_rejects_a_fixed_buffer_floats_and_the_blocked_convention() -> None:
    buffer = torch.ones(64, 64, dtype=torch.bool).tril()

    def from_buffer(n):
        return buffer[:n, :n]

    def as_float(n):
        return torch.ones(n, n).tril()

    def blocked_positions(n):  # nn.Transformer's convention: True = may NOT attend
        return torch.ones(n, n, dtype=torch.bool).triu(1)

    def as_lists(n):
        return ex.solution_causal_mask(n).tolist()

    assert failed(
        ex.check_causal_mask(from_buffer, verbose=False),
        "n = 65",
        "expected shape (65, 65), got shape (64, 64)",
    )
    assert failed(
        ex.check_causal_mask(as_float, verbose=False), "expected dtype torch.bool"
    )
    assert failed(ex.check_causal_mask(blocked_positions, verbose=False), "n = 1")
    assert failed(
        ex.check_causal_mask(as_lists, verbose=False), "expected a tensor, got a list"
    )


def test_sliding_window_matches_the_package() -> None:
    for n, w in ((5, 2), (6, 1), (4, 9)):
        assert torch.equal(
            ex.solution_sliding_window_mask(n, w), attention.sliding_window_mask(n, w)
        )


def test_sliding_window_accepts_band_of_triangles() -> None:
    def band(n, window):
        ones = torch.ones(n, n, dtype=torch.bool)
        return ones.tril() & ones.triu(-(window - 1))

    assert passes(ex.check_sliding_window_mask, band)


def test_sliding_window_rejects_off_by_one_blocks_buffers_and_floats() -> None:
    def one_too_many(n, window):
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return (j <= i) & (i - j <= window)

    def blocks(n, window):  # local attention in fixed blocks, not a sliding window
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return (j <= i) & (i // window == j // window)

    buffer = torch.ones(64, 64, dtype=torch.bool)

    def from_buffer(n, window):
        return buffer[:n, :n].tril() & buffer[:n, :n].triu(-(window - 1))

    def as_float(n, window):
        return ex.solution_sliding_window_mask(n, window).float()

    check = ex.check_sliding_window_mask
    assert failed(check(one_too_many, verbose=False), "window = 1")
    assert failed(check(blocks, verbose=False), "n = 5, window = 2")
    assert failed(check(from_buffer, verbose=False), "n = 100, window = 64")
    assert failed(check(as_float, verbose=False), "expected dtype torch.bool")


# ------------------------------------------------------------------ heads


def test_split_and_merge_match_the_package() -> None:
    x = torch.randn(2, 5, 12)
    assert torch.equal(ex.solution_split_heads(x, 3), attention.split_heads(x, 3))
    assert torch.equal(ex.solution_merge_heads(ex.solution_split_heads(x, 4)), x)


def test_heads_accept_reshape_permute_and_unflatten() -> None:
    def split(x, n_heads):
        return x.unflatten(-1, (n_heads, -1)).permute(0, 2, 1, 3)

    def merge(x):
        return x.permute(0, 2, 1, 3).flatten(2)

    assert passes(ex.check_split_heads, split)
    assert passes(ex.check_merge_heads, merge)


def test_split_heads_rejects_mixing_tokens_strided_heads_and_a_float32_buffer() -> None:
    def no_transpose(x, n_heads):
        b, s, d = x.shape
        return x.reshape(b, n_heads, s, d // n_heads)

    def heads_last(x, n_heads):  # cuts d_model into (d_head, n_heads): strided heads
        b, s, d = x.shape
        return x.view(b, s, d // n_heads, n_heads).permute(0, 3, 1, 2)

    def into_zeros(x, n_heads):  # a float32 buffer, whatever the input
        b, s, d = x.shape
        out = torch.zeros(b, n_heads, s, d // n_heads)
        for h in range(n_heads):
            out[:, h] = x[..., h * (d // n_heads) : (h + 1) * (d // n_heads)]
        return out

    check = ex.check_split_heads
    assert failed(
        check(no_transpose, verbose=False),
        "arange(8)",
        "expected tensor of shape (1, 2, 2, 2) [0, 1, 4, 5",
    )
    assert failed(check(heads_last, verbose=False), "arange(8)")
    assert failed(check(into_zeros, verbose=False), "float64", "expected dtype")


def test_merge_heads_rejects_no_transpose_view_on_contiguous_and_summing() -> None:
    def no_transpose(x):
        b, h, s, dh = x.shape
        return x.reshape(b, s, h * dh)

    def view_after_transpose(x):  # works on split_heads' output only
        b, h, s, dh = x.shape
        return x.transpose(1, 2).view(b, s, h * dh)

    def sums_heads(x):
        return x.sum(1)

    assert failed(ex.check_merge_heads(no_transpose, verbose=False), "arange(8)")
    assert failed(
        ex.check_merge_heads(view_after_transpose, verbose=False),
        "raised RuntimeError",
    )
    assert failed(
        ex.check_merge_heads(sums_heads, verbose=False), "expected shape (1, 2, 4)"
    )


# ------------------------------------------------------------------ ALiBi


def test_alibi_matches_the_package_and_accepts_a_list_of_slopes() -> None:
    from lm_course.positional import alibi_bias

    for h in (1, 2, 4, 8, 16):
        assert torch.allclose(ex.solution_alibi_bias(h, 5), alibi_bias(h, 5))

    def from_list(n_heads, seq_len):
        slopes = torch.tensor([2 ** (-8 * (h + 1) / n_heads) for h in range(n_heads)])
        pos = torch.arange(seq_len)
        return -slopes.view(-1, 1, 1) * (pos.view(1, -1) - pos.view(-1, 1)).abs()

    assert passes(ex.check_alibi_bias, from_list)


def test_alibi_rejects_sign_order_integer_division_and_float64() -> None:
    def signed(n_heads, seq_len):
        slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1) / n_heads)
        pos = torch.arange(seq_len)
        return -slopes[:, None, None] * (pos[:, None] - pos[None, :]).float()

    def reversed_slopes(n_heads, seq_len):
        return ex.solution_alibi_bias(n_heads, seq_len).flip(0)

    def integer_step(n_heads, seq_len):  # 8 // n_heads is exact up to 8 heads only
        step = 8 // n_heads
        slopes = 2.0 ** (-step * torch.arange(1, n_heads + 1).float())
        pos = torch.arange(seq_len)
        return -slopes[:, None, None] * (pos[:, None] - pos[None, :]).abs()

    def in_float64(n_heads, seq_len):
        return ex.solution_alibi_bias(n_heads, seq_len).double()

    assert failed(ex.check_alibi_bias(signed, verbose=False), "1 head")
    assert failed(ex.check_alibi_bias(reversed_slopes, verbose=False), "2 heads")
    assert failed(ex.check_alibi_bias(integer_step, verbose=False), "16 heads")
    assert failed(
        ex.check_alibi_bias(in_float64, verbose=False), "expected dtype torch.float32"
    )
