"""Chapter 7 checkers: each accepts the reference and differently written correct
answers, says "not attempted" for a stub, and rejects wrong answers of several kinds
(a neighbouring idea, an edge, a built-in, the whole score matrix, type and mutation)
with a message that names the case."""

from __future__ import annotations

import math

import pytest
import torch
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    last_case_only_raises,
    on_meta,
    passes,
)

from lm_course.attention import scaled_dot_product_attention
from lm_course.attention.grouped import repeat_kv
from lm_course.attention.sparse import block_local_mask
from lm_course.exercises import ch07_efficient as ex
from lm_course.models.kvcache import kv_cache_bytes

ALL_CHECKS = [
    (ex.check_block_local_mask, ex.solution_block_local_mask),
    (ex.check_tiled_attention, ex.solution_tiled_attention),
    (ex.check_repeat_kv, ex.solution_repeat_kv),
    (ex.check_kv_cache_bytes, ex.solution_kv_cache_bytes),
]
TENSOR_CHECKS = ALL_CHECKS[:3]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


@pytest.mark.parametrize(("check", "solution"), TENSOR_CHECKS)
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


def test_the_solutions_agree_with_the_package() -> None:
    for n, block in [(7, 3), (64, 8), (100, 30)]:
        assert torch.equal(
            ex.solution_block_local_mask(n, block), block_local_mask(n, block)
        )
    x = torch.randn(2, 3, 5, 4)
    assert torch.equal(ex.solution_repeat_kv(x, 4), repeat_kv(x, 4))
    q, k, v = (
        torch.randn(2, 4, 9, 8),
        torch.randn(2, 4, 30, 8),
        torch.randn(2, 4, 30, 8),
    )
    expected, _ = scaled_dot_product_attention(q, k, v)
    got = ex.solution_tiled_attention(q, k, v, 7)
    torch.testing.assert_close(got, expected)
    for dtype in (torch.float32, torch.float16, torch.int8):
        size = torch.empty((), dtype=dtype).element_size()
        assert ex.solution_kv_cache_bytes(32, 8, 128, 4096, 2, size) == kv_cache_bytes(
            32, 8, 128, 4096, 2, dtype
        )


# ------------------------------------------------------------------ block-local mask


def test_block_local_mask_accepts_loops_and_a_block_diagonal() -> None:
    def by_loops(n, block):
        mask = torch.zeros(n, n, dtype=torch.bool)
        for i in range(n):
            for j in range(i - i % block, i + 1):
                mask[i, j] = True
        return mask

    def block_diagonal(n, block):
        blocks = [
            torch.ones(min(block, n - s), min(block, n - s), dtype=torch.bool).tril()
            for s in range(0, n, block)
        ]
        return torch.block_diag(*blocks)

    assert passes(ex.check_block_local_mask, by_loops)
    assert passes(ex.check_block_local_mask, block_diagonal)


def test_block_local_mask_rejects_windows_full_blocks_and_padded_blocks() -> None:
    def sliding_window(n, block):  # a neighbouring idea: the window slides
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return (j <= i) & (i - j < block)

    def not_causal(n, block):  # the whole block, the future included
        i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
        return i // block == j // block

    def whole_blocks_only(n, block):  # blocks built whole, then cut: fails if uneven
        m = math.ceil(n / block) if n % block == 0 else n // block
        tile = torch.ones(block, block, dtype=torch.bool).tril()
        return torch.block_diag(*[tile] * m)[:n, :n]

    def as_integers(n, block):
        return ex.solution_block_local_mask(n, block).long()

    check = ex.check_block_local_mask
    assert failed(check(sliding_window, verbose=False), "n = 4, block = 2")
    assert failed(check(not_causal, verbose=False), "n = 4, block = 2")
    assert failed(
        check(whole_blocks_only, verbose=False), "n = 7, block = 3", "expected shape"
    )
    assert failed(
        check(as_integers, verbose=False), "expected dtype torch.bool, got torch.int64"
    )


# ------------------------------------------------------------------ tiled attention


def test_tiled_attention_accepts_a_rescale_written_differently() -> None:
    def with_logs(q, k, v, block_size):
        """Keeps log l instead of l, and rescales the output instead of the sum."""
        scale = q.size(-1) ** -0.5
        out = torch.zeros(*q.shape[:-1], v.size(-1), dtype=q.dtype)
        m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=q.dtype)
        log_l = torch.full_like(m, -math.inf)
        for start in range(0, k.size(-2), block_size):
            s = torch.einsum(
                "...qd,...kd->...qk", q, k[..., start : start + block_size, :]
            )
            s = s * scale
            m_new = torch.maximum(m, s.max(-1, keepdim=True).values)
            p = (s - m_new).exp()
            tile_l = p.sum(-1, keepdim=True)
            new_log_l = torch.log(torch.exp(log_l + m - m_new) + tile_l)
            weight_old = torch.exp(log_l + m - m_new - new_log_l)
            tile_out = p @ v[..., start : start + block_size, :] / new_log_l.exp()
            out = out * weight_old + tile_out
            m, log_l = m_new, new_log_l
        return out

    assert passes(ex.check_tiled_attention, with_logs)


def _tiled(q, k, v, block_size, *, rescale=True, subtract_max=True):
    """The reference with one step switched off, for the wrong answers below."""
    scale = 1.0 / math.sqrt(q.size(-1))
    m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=q.dtype)
    l_sum = torch.zeros_like(m)
    acc = torch.zeros(*q.shape[:-1], v.size(-1), dtype=q.dtype)
    for start in range(0, k.size(-2), block_size):
        s = q @ k[..., start : start + block_size, :].transpose(-2, -1) * scale
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        if not subtract_max:
            m_new = torch.zeros_like(m_new)
        p = (s - m_new).exp()
        r = (m - m_new).exp() if rescale and subtract_max else torch.ones_like(m)
        if not subtract_max:
            r = torch.ones_like(m)
        l_sum = l_sum * r + p.sum(-1, keepdim=True)
        acc = acc * r + p @ v[..., start : start + block_size, :]
        m = m_new
    return acc / l_sum


def test_tiled_attention_rejects_forgotten_rescales_and_overflow() -> None:
    check = ex.check_tiled_attention
    no_rescale = lambda q, k, v, b: _tiled(q, k, v, b, rescale=False)  # noqa: E731
    no_max = lambda q, k, v, b: _tiled(q, k, v, b, subtract_max=False)  # noqa: E731
    assert failed(check(no_rescale, verbose=False), "values differ")
    assert failed(check(no_max, verbose=False), "thousands", "non-finite")


def test_tiled_attention_rejects_the_whole_score_matrix_and_builtins() -> None:
    def whole_matrix(q, k, v, block_size):  # right values, but all scores at once
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        e = (s - s.amax(-1, keepdim=True)).exp()
        return e / e.sum(-1, keepdim=True) @ v

    def builtin(q, k, v, block_size):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    def softmax_per_tile(q, k, v, block_size):  # normalises each tile on its own
        outs = []
        for start in range(0, k.size(-2), block_size):
            s = q @ k[..., start : start + block_size, :].transpose(-2, -1)
            w = torch.softmax(s / math.sqrt(q.size(-1)), -1)
            outs.append(w @ v[..., start : start + block_size, :])
        return sum(outs) / len(outs)

    check = ex.check_tiled_attention
    assert failed(
        check(whole_matrix, verbose=False),
        "tiles of 3",
        "your function made a tensor of shape (2, 1, 5, 7) (matmul)",
        "more than block_size=3 scores per query",
    )
    assert failed(check(builtin, verbose=False), "your function called")
    assert failed(
        check(softmax_per_tile, verbose=False), "your function called softmax"
    )


def test_tiled_attention_rejects_in_place_changes_and_float32_results() -> None:
    def scales_q_in_place(q, k, v, block_size):
        q.mul_(1.0)  # harmless value, but the input is written to
        q.mul_(2.0).div_(2.0)
        q.add_(1e-3)
        return ex.solution_tiled_attention(q - 1e-3, k, v, block_size)

    def always_float32(q, k, v, block_size):
        return ex.solution_tiled_attention(q.float(), k.float(), v.float(), block_size)

    check = ex.check_tiled_attention
    assert failed(check(scales_q_in_place, verbose=False), "changed its argument `q`")
    assert failed(
        check(always_float32, verbose=False),
        "float64",
        "expected dtype torch.float64, got torch.float32",
    )
    partial = last_case_only_raises(ex.solution_tiled_attention, calls_before=2)
    assert failed(check(partial, verbose=False), "raised NotImplementedError")


# ------------------------------------------------------------------ repeat_kv


def test_repeat_kv_accepts_expand_and_index_select() -> None:
    def by_expand(x, n_rep):
        b, h, s, d = x.shape
        return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)

    def by_index(x, n_rep):
        heads = torch.arange(x.size(1) * n_rep) // n_rep
        return x.index_select(1, heads)

    assert passes(ex.check_repeat_kv, by_expand)
    assert passes(ex.check_repeat_kv, by_index)


def test_repeat_kv_rejects_tiling_the_wrong_axis_and_a_forgotten_reshape() -> None:
    def tiled(x, n_rep):  # heads 0, 1, 0, 1 instead of 0, 0, 1, 1
        return x.repeat(1, n_rep, 1, 1)

    def along_the_sequence(x, n_rep):
        return x.repeat_interleave(n_rep, dim=2)

    def expanded_only(x, n_rep):
        return x[:, :, None].expand(-1, -1, n_rep, -1, -1)

    def as_float(x, n_rep):
        return ex.solution_repeat_kv(x, n_rep).float()

    check = ex.check_repeat_kv
    assert failed(check(tiled, verbose=False), "(1, 2, 3, 2), n_rep = 2", "differ")
    assert failed(check(along_the_sequence, verbose=False), "expected shape")
    assert failed(check(expanded_only, verbose=False), "expected shape (1, 4, 3, 2)")
    assert failed(check(as_float, verbose=False), "float16", "expected dtype")


# ------------------------------------------------------------------ cache bytes


def test_kv_cache_bytes_accepts_another_order_of_factors() -> None:
    def per_token_first(n_layer, n_kv_head, d_head, length, batch_size, nbytes):
        per_token = n_layer * 2 * n_kv_head * d_head * nbytes
        return per_token * length * batch_size

    assert passes(ex.check_kv_cache_bytes, per_token_first)


def test_kv_cache_bytes_rejects_missing_factors_floats_and_bits() -> None:
    def keys_only(n_layer, n_kv_head, d_head, length, batch_size, nbytes):
        return n_layer * n_kv_head * d_head * length * batch_size * nbytes

    def as_float(n_layer, n_kv_head, d_head, length, batch_size, nbytes):
        return 2.0 * n_layer * n_kv_head * d_head * length * batch_size * nbytes

    def in_bits(n_layer, n_kv_head, d_head, length, batch_size, nbytes):
        return 2 * n_layer * n_kv_head * d_head * length * batch_size * nbytes * 8

    def forgets_the_batch(n_layer, n_kv_head, d_head, length, batch_size, nbytes):
        return 2 * n_layer * n_kv_head * d_head * length * nbytes

    check = ex.check_kv_cache_bytes
    assert failed(check(keys_only, verbose=False), "1 layer", "expected 96, got 48")
    assert failed(check(as_float, verbose=False), "expected an int, got a float")
    assert failed(check(in_bits, verbose=False), "expected 96, got 768")
    assert failed(check(forgets_the_batch, verbose=False), "3 sequences")
