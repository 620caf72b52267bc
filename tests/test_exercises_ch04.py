"""Chapter 4 checkers: each accepts the reference and a differently written correct
answer, says "not attempted" for a stub, and rejects wrong answers of several kinds
(the formula, eps, axes, masks, wiring, dtype) with a message that names the case."""

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
)

from lm_course.exercises import ch04_transformer as ex

ALL_CHECKS = [
    (ex.check_rms_norm, ex.solution_rms_norm),
    (ex.check_layer_norm, ex.solution_layer_norm),
    (ex.check_multi_head_attention, ex.solution_multi_head_attention),
    (ex.check_pre_ln_block, ex.solution_pre_ln_block),
    (ex.check_mean_attention_distance, ex.solution_mean_attention_distance),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_a_partial_answer_fails_instead_of_not_attempted(check, solution) -> None:
    assert failed(
        check(last_case_only_raises(solution, calls_before=2), verbose=False),
        "this case is not handled yet",
    )


def passes(check, fn) -> bool:
    result = check(fn, verbose=False)
    assert result.passed, result
    return True


# ------------------------------------------------------------------ RMSNorm


def test_rms_norm_accepts_torch_and_rsqrt_versions() -> None:
    def by_rsqrt(x, gain, eps=1e-5):
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps) * gain

    def by_torch(x, gain, eps=1e-5):
        return F.rms_norm(x, (x.size(-1),), gain, eps)

    assert passes(ex.check_rms_norm, by_rsqrt)
    assert passes(ex.check_rms_norm, by_torch)


def test_rms_norm_rejects_the_article_formula_eps_outside_and_wrong_axis() -> None:
    def article(x, gain, eps=1e-5):  # 003 §4.2.3: no sqrt(d)
        return gain * x / (x.norm(dim=-1, keepdim=True) + eps)

    def eps_outside(x, gain, eps=1e-5):
        return gain * x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps)

    def wrong_axis(x, gain, eps=1e-5):
        return gain * x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps)

    def no_gain(x, gain, eps=1e-5):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    def centred(x, gain, eps=1e-5):  # that is LayerNorm
        c = x - x.mean(-1, keepdim=True)
        return gain * c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + eps)

    assert failed(ex.check_rms_norm(article, verbose=False), "[1., 2., 3., 4.]")
    assert failed(ex.check_rms_norm(eps_outside, verbose=False), "tiny vectors")
    assert failed(ex.check_rms_norm(wrong_axis, verbose=False), "values differ")
    assert failed(ex.check_rms_norm(no_gain, verbose=False), "around 3")
    assert failed(ex.check_rms_norm(centred, verbose=False), "[1., 2., 3., 4.]")


# ------------------------------------------------------------------ LayerNorm


def test_layer_norm_accepts_torch_and_var_mean() -> None:
    def by_torch(x, gamma, beta, eps=1e-5):
        return F.layer_norm(x, (x.size(-1),), gamma, beta, eps)

    def by_var_mean(x, gamma, beta, eps=1e-5):
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        return (x - mean) * torch.rsqrt(var + eps) * gamma + beta

    assert passes(ex.check_layer_norm, by_torch)
    assert passes(ex.check_layer_norm, by_var_mean)


def test_layer_norm_rejects_unbiased_variance_one_pass_and_eps_outside() -> None:
    def unbiased(x, gamma, beta, eps=1e-5):  # torch.var divides by d - 1 by default
        mean = x.mean(-1, keepdim=True)
        return gamma * (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) + beta

    def one_pass(x, gamma, beta, eps=1e-5):  # E[x^2] - E[x]^2 cancels in float32
        mean = x.mean(-1, keepdim=True)
        var = x.pow(2).mean(-1, keepdim=True) - mean.pow(2)
        return gamma * (x - mean) / torch.sqrt(var + eps) + beta

    def eps_outside(x, gamma, beta, eps=1e-5):
        mean = x.mean(-1, keepdim=True)
        std = (x - mean).pow(2).mean(-1, keepdim=True).sqrt()
        return gamma * (x - mean) / (std + eps) + beta

    def no_bias(x, gamma, beta, eps=1e-5):
        return ex.solution_layer_norm(x, gamma, torch.zeros_like(beta), eps)

    def float32_result(x, gamma, beta, eps=1e-5):
        return ex.solution_layer_norm(x.float(), gamma.float(), beta.float(), eps)

    assert failed(ex.check_layer_norm(unbiased, verbose=False), "[1., 2., 3., 4.]")
    assert failed(ex.check_layer_norm(one_pass, verbose=False), "float32 keeps")
    assert failed(ex.check_layer_norm(eps_outside, verbose=False), "nearly constant")
    assert failed(ex.check_layer_norm(no_bias, verbose=False), "around 3")
    assert failed(
        ex.check_layer_norm(float32_result, verbose=False), "float64", "dtype"
    )


# ------------------------------------------------------------------ attention


def _heads_first(x, w, n_heads):
    b, s, d = x.shape
    return (x @ w).view(b, s, n_heads, d // n_heads).transpose(1, 2)


def _attend(x, w_q, w_k, w_v, n_heads, *, causal=True, scale=None):
    q, k, v = (_heads_first(x, w, n_heads) for w in (w_q, w_k, w_v))
    scale = scale or math.sqrt(q.size(-1))
    scores = q @ k.transpose(-2, -1) / scale
    if causal:
        s = x.size(1)
        scores = scores + torch.full((s, s), float("-inf")).triu(1)
    return torch.softmax(scores, -1) @ v  # (batch, heads, seq, d_head)


def _merge(out):
    b, h, s, dh = out.shape
    return out.transpose(1, 2).reshape(b, s, h * dh)


def test_mha_accepts_a_loop_over_heads_and_einsum() -> None:
    def loop(x, w_q, w_k, w_v, w_o, n_heads):
        d_head = x.size(-1) // n_heads
        outs = []
        s = x.size(1)
        mask = torch.ones(s, s, dtype=torch.bool).tril()
        for i in range(n_heads):
            cols = slice(i * d_head, (i + 1) * d_head)
            q, k, v = x @ w_q[:, cols], x @ w_k[:, cols], x @ w_v[:, cols]
            scores = (q @ k.transpose(1, 2)) / d_head**0.5
            weights = scores.masked_fill(~mask, -1e30).softmax(-1)
            outs.append(weights @ v)
        return torch.cat(outs, dim=-1) @ w_o

    def by_einsum(x, w_q, w_k, w_v, w_o, n_heads):
        b, s, d = x.shape
        q, k, v = (
            torch.einsum("bsd,de->bse", x, w).view(b, s, n_heads, -1)
            for w in (w_q, w_k, w_v)
        )
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d // n_heads)
        scores = scores.masked_fill(torch.ones(s, s).triu(1).bool(), float("-inf"))
        out = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)
        return out.reshape(b, s, d) @ w_o

    assert passes(ex.check_multi_head_attention, loop)
    assert passes(ex.check_multi_head_attention, by_einsum)


def test_mha_rejects_missing_w_o_mask_and_wrong_scale() -> None:
    def no_w_o(x, w_q, w_k, w_v, w_o, n_heads):  # article 003 §4.2.2
        return _merge(_attend(x, w_q, w_k, w_v, n_heads))

    def no_mask(x, w_q, w_k, w_v, w_o, n_heads):
        return _merge(_attend(x, w_q, w_k, w_v, n_heads, causal=False)) @ w_o

    def d_model_scale(x, w_q, w_k, w_v, w_o, n_heads):
        out = _attend(x, w_q, w_k, w_v, n_heads, scale=math.sqrt(x.size(-1)))
        return _merge(out) @ w_o

    assert failed(ex.check_multi_head_attention(no_w_o, verbose=False), "one head")
    assert failed(ex.check_multi_head_attention(no_mask, verbose=False), "one head")
    assert failed(
        ex.check_multi_head_attention(d_model_scale, verbose=False), "2 heads"
    )


def test_mha_rejects_heads_cut_or_merged_wrongly_and_the_fused_kernel() -> None:
    def view_without_transpose(x, w_q, w_k, w_v, w_o, n_heads):
        b, s, d = x.shape
        q, k, v = ((x @ w).view(b, n_heads, s, d // n_heads) for w in (w_q, w_k, w_v))
        mask = torch.full((s, s), float("-inf")).triu(1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // n_heads) + mask
        return _merge(scores.softmax(-1) @ v) @ w_o

    def merged_heads_last(x, w_q, w_k, w_v, w_o, n_heads):
        out = _attend(x, w_q, w_k, w_v, n_heads)  # (b, h, s, dh)
        b, h, s, dh = out.shape
        return out.permute(0, 2, 3, 1).reshape(b, s, h * dh) @ w_o

    def fused(x, w_q, w_k, w_v, w_o, n_heads):
        q, k, v = (_heads_first(x, w, n_heads) for w in (w_q, w_k, w_v))
        return _merge(F.scaled_dot_product_attention(q, k, v, is_causal=True)) @ w_o

    assert failed(
        ex.check_multi_head_attention(view_without_transpose, verbose=False), "2 heads"
    )
    assert failed(
        ex.check_multi_head_attention(merged_heads_last, verbose=False), "2 heads"
    )
    assert failed(
        ex.check_multi_head_attention(fused, verbose=False), "your function called"
    )


# ------------------------------------------------------------------ pre-LN block


def test_block_accepts_a_two_line_version_with_names() -> None:
    def named(x, attn, mlp, ln1, ln2):
        after_attention = x + attn(ln1(x))
        update = mlp(ln2(after_attention))
        return after_attention + update

    assert passes(ex.check_pre_ln_block, named)


def test_block_rejects_post_ln_no_residual_normalised_stream_and_one_norm() -> None:
    def post_ln(x, attn, mlp, ln1, ln2):
        x = ln1(x + attn(x))
        return ln2(x + mlp(x))

    def no_residual(x, attn, mlp, ln1, ln2):
        return mlp(ln2(attn(ln1(x))))

    def normalised_stream(x, attn, mlp, ln1, ln2):
        x = ln1(x)
        x = x + attn(x)
        x = ln2(x)
        return x + mlp(x)

    def one_norm(x, attn, mlp, ln1, ln2):
        x = x + attn(ln1(x))
        return x + mlp(ln1(x))

    for wrong in (post_ln, no_residual, normalised_stream, one_norm):
        assert failed(ex.check_pre_ln_block(wrong, verbose=False), "width 16"), wrong


# ------------------------------------------------------------------ attention distance


def test_distance_accepts_a_loop_and_a_weighted_average_of_positions() -> None:
    def loop(weights):
        b, h, s, _ = weights.shape
        total = torch.zeros(h, dtype=weights.dtype)
        for i in range(s):
            for j in range(s):
                total += weights[:, :, i, j].sum(0) * abs(i - j)
        return total / (b * s)

    def by_positions(weights):
        s = weights.size(-1)
        pos = torch.arange(s, dtype=weights.dtype)
        expected_key = (weights * pos).sum(-1)  # (b, h, s): mean key position
        # |i - j| = i - j for causal rows only; weight the two sides separately.
        below = (weights * pos).tril().sum(-1)
        w_below = weights.tril().sum(-1)
        above = expected_key - below
        w_above = 1 - w_below
        return (pos * w_below - below + above - pos * w_above).mean((0, 2))

    assert passes(ex.check_mean_attention_distance, loop)
    assert passes(ex.check_mean_attention_distance, by_positions)


def test_distance_rejects_signed_argmax_key_mean_unaveraged_and_positions() -> None:
    def signed(weights):
        pos = torch.arange(weights.size(-1), dtype=weights.dtype)
        return (weights * (pos[:, None] - pos[None, :])).sum(-1).mean((0, 2))

    def by_argmax(weights):
        pos = torch.arange(weights.size(-1))
        return (pos - weights.argmax(-1)).abs().to(weights.dtype).mean((0, 2))

    def mean_over_keys(weights):
        pos = torch.arange(weights.size(-1), dtype=weights.dtype)
        d = (pos[:, None] - pos[None, :]).abs()
        return (weights * d).mean(-1).mean((0, 2))

    def per_window(weights):
        return ex.solution_mean_attention_distance(weights[:1])

    def key_position(weights):  # where the key is, not how far from the query
        pos = torch.arange(weights.size(-1), dtype=weights.dtype)
        return (weights * pos).sum(-1).mean((0, 2))

    assert failed(ex.check_mean_attention_distance(signed, verbose=False), "bidirect")
    assert failed(ex.check_mean_attention_distance(by_argmax, verbose=False), "uniform")
    assert failed(
        ex.check_mean_attention_distance(mean_over_keys, verbose=False), "one step"
    )
    assert failed(
        ex.check_mean_attention_distance(per_window, verbose=False), "64 windows"
    )
    assert failed(
        ex.check_mean_attention_distance(key_position, verbose=False), "one step"
    )
