"""Tests for lm_course.positional: sinusoidal, learned, RoPE and ALiBi."""

import math

import pytest
import torch

from lm_course.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    alibi_bias,
    alibi_slopes,
    apply_rotary,
    sinusoidal_table,
)


def test_sinusoidal_known_values():
    pe = sinusoidal_table(50, 8)
    assert pe.shape == (50, 8)
    # Position 0: sin(0) = 0 in even dimensions, cos(0) = 1 in odd ones.
    assert torch.equal(pe[0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 1]))
    # Dimension pair 0 turns one radian per position.
    assert pe[1, 0].item() == pytest.approx(math.sin(1.0))
    assert pe[1, 1].item() == pytest.approx(math.cos(1.0))
    # Pair i turns at 10000^(-2i/d): pair 1 of d=8 at 10000^(-1/4) = 0.1 rad per
    # position.
    assert pe[7, 2].item() == pytest.approx(math.sin(0.7), abs=1e-6)
    assert pe[7, 3].item() == pytest.approx(math.cos(0.7), abs=1e-6)
    assert pe.abs().max() <= 1.0


def test_sinusoidal_module_adds_table_with_offset():
    module = SinusoidalPositionalEncoding(d_model=6, max_len=10)
    x = torch.zeros(2, 3, 6)
    assert torch.equal(module(x, offset=4)[1], sinusoidal_table(10, 6)[4:7])
    assert list(module.state_dict()) == []  # fixed table, nothing to save
    with pytest.raises(ValueError, match=r"positions 8\.\.10 do not fit in max_len=10"):
        module(x, offset=8)


def test_sinusoidal_rejects_odd_width():
    with pytest.raises(ValueError, match="d_model must be even.*got 7; try 6 or 8"):
        sinusoidal_table(10, 7)


def test_learned_positions_have_a_limit():
    module = LearnedPositionalEmbedding(d_model=4, max_len=5)
    assert module(torch.zeros(1, 5, 4)).shape == (1, 5, 4)
    with pytest.raises(ValueError, match="max_len=5"):
        module(torch.zeros(1, 6, 4))


# ---------------------------------------------------------------------------- RoPE


def test_rope_preserves_norms():
    x = torch.randn(2, 3, 10, 16)
    rotated = apply_rotary(x, offset=5)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    assert not torch.allclose(rotated, x)
    torch.testing.assert_close(
        apply_rotary(x[:, :, :1], offset=0), x[:, :, :1]
    )  # position 0


def test_rope_scores_depend_only_on_relative_offset():
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m: int, n: int) -> float:
        return (apply_rotary(q, offset=m) * apply_rotary(k, offset=n)).sum().item()

    assert score(3, 1) == pytest.approx(score(10, 8), abs=1e-5)
    assert score(7, 7) == pytest.approx(score(0, 0), abs=1e-5)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)


def test_rotary_module_matches_function_and_explicit_positions():
    x = torch.randn(2, 2, 4, 6)
    module = RotaryEmbedding(d_head=6, max_len=20)
    torch.testing.assert_close(module(x, offset=3), apply_rotary(x, offset=3))
    positions = torch.tensor([3, 4, 5, 6])
    torch.testing.assert_close(
        apply_rotary(x, positions=positions), apply_rotary(x, offset=3)
    )
    with pytest.raises(ValueError, match="max_len=20"):
        module(x, offset=18)


def test_rope_needs_even_head_width():
    with pytest.raises(
        ValueError, match="d_head must be even for rotary embeddings.*got 5"
    ):
        apply_rotary(torch.randn(1, 1, 3, 5))
    with pytest.raises(ValueError, match="d_head must be even"):
        RotaryEmbedding(d_head=7, max_len=4)
    with pytest.raises(ValueError, match="batch, heads, seq, d_head"):
        apply_rotary(torch.randn(3, 4))


# ---------------------------------------------------------------------------- ALiBi


def test_alibi_slopes_for_eight_heads():
    expected = torch.tensor([2.0**-i for i in range(1, 9)])
    torch.testing.assert_close(alibi_slopes(8), expected)


def test_alibi_slopes_for_any_head_count():
    # 6 heads: the 4-head slopes, then every other slope of the 8-head sequence.
    expected = [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]
    torch.testing.assert_close(alibi_slopes(6), torch.tensor(expected))
    for n in (1, 3, 5, 12):
        slopes = alibi_slopes(n)
        assert slopes.shape == (n,) and len(set(slopes.tolist())) == n
    with pytest.raises(ValueError, match="n_heads must be an integer >= 1, got 0"):
        alibi_slopes(0)


def test_alibi_bias_shape_values_and_cache_offset():
    bias = alibi_bias(2, 4)
    assert bias.shape == (2, 4, 4)
    assert torch.equal(bias.diagonal(dim1=1, dim2=2), torch.zeros(2, 4))
    assert bias[0, 3, 0].item() == pytest.approx(
        -3 * 2.0**-4
    )  # 2 heads: slopes 1/16, 1/256
    # The last query of a cache step sees the same bias as the last row of the full
    # table.
    torch.testing.assert_close(alibi_bias(2, 1, 4), bias[:, -1:])
    torch.testing.assert_close(alibi_bias(2, 2, 4), bias[:, 2:])
    with pytest.raises(ValueError, match=r"k_len \(2\) must be >= q_len \(3\)"):
        alibi_bias(2, 3, 2)
