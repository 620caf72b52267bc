"""The tiled, online-softmax attention equals full attention and holds less memory."""

import pytest
import torch

from lm_course.attention import causal_mask, scaled_dot_product_attention
from lm_course.attention.cost import peak_memory
from lm_course.attention.flash import flash_attention


def qkv(q_len: int, k_len: int, d_v: int = 8, scale: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(2, 3, q_len, 8, generator=g)
    k = scale * torch.randn(2, 3, k_len, 8, generator=g)
    return q, k, torch.randn(2, 3, k_len, d_v, generator=g)


@pytest.mark.parametrize(
    ("q_len", "k_len", "causal", "block_q", "block_k"),
    [
        (37, 37, True, 8, 5),  # blocks that do not divide the length
        (64, 64, True, 16, 16),  # blocks that do
        (50, 70, True, 16, 16),  # queries at the end of a longer context (a cache)
        (1, 70, True, 64, 64),  # one new token
        (10, 30, False, 3, 7),  # cross-attention shapes
        (100, 100, False, 200, 200),  # one tile holds everything
        (5, 5, True, 1, 1),  # one score at a time
    ],
)
def test_equals_full_softmax_attention(q_len, k_len, causal, block_q, block_k):
    q, k, v = qkv(q_len, k_len, d_v=5)
    mask = causal_mask(q_len, k_len) if causal else None
    expected, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    got = flash_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)


def test_large_scores_do_not_overflow():
    # Scores in the thousands: exp overflows unless every tile subtracts a maximum.
    q, k, v = qkv(40, 40, scale=30.0)
    expected, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(40))
    got = flash_attention(q, k, v, causal=True, block_q=8, block_k=8)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_float64_and_gradients_match():
    q, k, v = (t.double().requires_grad_() for t in qkv(33, 33))
    flash_attention(q, k, v, causal=True, block_q=8, block_k=8).sin().sum().backward()
    got = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    out, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(33))
    out.sin().sum().backward()
    for g, expected in zip(got, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(g, expected)


def test_arguments_are_checked():
    q, k, v = qkv(4, 4)
    with pytest.raises(ValueError, match="block_q must be an integer >= 1"):
        flash_attention(q, k, v, block_q=0)
    with pytest.raises(TypeError, match="causal must be"):
        flash_attention(q, k, v, causal="yes")
    q_long, k_short, v_short = qkv(6, 4)
    with pytest.raises(ValueError, match=r"k_len \(4\) >= q_len \(6\)"):
        flash_attention(q_long, k_short, v_short, causal=True)
    with pytest.raises(ValueError, match="4-D"):
        flash_attention(q[0], k[0], v[0])


def test_tiles_hold_a_fraction_of_the_memory_of_the_score_matrix():
    q, k, v = qkv(1024, 1024)
    mask = causal_mask(1024)
    full = peak_memory(lambda: scaled_dot_product_attention(q, k, v, mask=mask))
    tiled = peak_memory(lambda: flash_attention(q, k, v, causal=True))
    scores = 2 * 3 * 1024 * 1024 * 4  # one float32 score matrix, bytes
    assert full >= 2 * scores  # scores and weights at least
    assert tiled < scores / 8
