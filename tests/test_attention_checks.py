"""Attention refuses what it cannot use, with the argument and the expected shape named.

One mask rule for both backends: a mask is boolean (``True`` = may attend), an additive
float bias goes through ``attn_bias`` (``bias`` for the function). A 0/1 float mask used
to be added to the scores by the fused backend, so queries saw the future.
"""

from unittest import mock

import pytest
import torch

import lm_course.attention
from lm_course.attention import (
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
)
from lm_course.models.gpt import GPT, GPTConfig, KVCache

B, T, D, HEADS = 2, 6, 16, 4
BACKENDS = ["sdpa", "manual"]


def attention(backend: str = "sdpa", **kwargs) -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(D, HEADS, backend=backend, **kwargs)


def x(batch: int = B, seq: int = T, width: int = D, **kwargs) -> torch.Tensor:
    return torch.randn(batch, seq, width, **kwargs)


# ---------------------------------------------------------------------------- masks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.long])
def test_a_01_mask_is_refused_by_both_backends(backend, dtype):
    float_causal = torch.tril(torch.ones(T, T)).to(dtype)
    with pytest.raises(
        TypeError,
        match=r"mask must be a boolean tensor \(True = may attend\), got dtype "
        rf"{dtype}; a 0/1 mask converts with mask\.bool\(\), an additive float mask "
        r"\(0 and -inf\) goes in attn_bias= instead",
    ):
        attention(backend)(x(), mask=float_causal)
    # What the reader meant works, and sees no future.
    inputs = x().requires_grad_()
    attention(backend)(inputs, mask=float_causal.bool())[0, 0].sum().backward()
    assert (inputs.grad[0, 1:] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mask_that_does_not_broadcast_names_the_expected_shape(backend):
    with pytest.raises(
        ValueError,
        match=r"mask must broadcast to \(batch, heads, q_len, k_len\) = "
        r"\(2, 4, 6, 6\), got shape \(7, 7\)",
    ):
        attention(backend)(x(), mask=causal_mask(T + 1))
    with pytest.raises(ValueError, match=r"got shape \(3, 1, 1, 6\)"):
        attention(backend)(x(), mask=torch.ones(3, 1, 1, T, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"attn_bias must broadcast .* \(4, 6, 5\)"):
        attention(backend)(x(), attn_bias=torch.zeros(HEADS, T, T - 1))
    with pytest.raises(TypeError, match=r"attn_bias must be a floating-point tensor"):
        attention(backend)(x(), attn_bias=causal_mask(T))


def test_the_function_follows_the_same_rule():
    q = k = v = torch.randn(1, 2, T, 8)
    with pytest.raises(TypeError, match=r"mask must be a boolean .* goes in bias="):
        scaled_dot_product_attention(q, k, v, mask=torch.tril(torch.ones(T, T)))
    with pytest.raises(ValueError, match=r"mask must broadcast to .* \(1, 2, 6, 6\)"):
        scaled_dot_product_attention(q, k, v, mask=causal_mask(T, T + 1))
    with pytest.raises(ValueError, match=r"q and k must have the same width d_head"):
        scaled_dot_product_attention(q, torch.randn(1, 2, T, 4), v)
    with pytest.raises(ValueError, match=r"k and v in length"):
        scaled_dot_product_attention(q, k, torch.randn(1, 2, T + 1, 8))
    with pytest.raises(TypeError, match=r"q, k and v must share one dtype"):
        scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(ValueError, match=r"at least one position"):
        scaled_dot_product_attention(q, k[:, :, :0], v[:, :, :0])


# ---------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_widths_dtypes_and_empty_batches(backend):
    layer = attention(backend)
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(batch, seq, d_model=16\), got \(2, 6, 12",
    ):
        layer(x(width=12))
    with pytest.raises(
        TypeError,
        match=r"x has dtype torch.float64 but the module's weights are torch.float32; "
        r"convert the input with x.to\(torch.float32\)",
    ):
        layer(x(dtype=torch.float64))
    with pytest.raises(ValueError, match=r"at least one row and one position.*\(0, 6"):
        layer(x(batch=0))
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        layer(torch.zeros(B, T, D, dtype=torch.long))
    # The module's dtype decides: a float64 module takes float64 inputs.
    assert layer.double()(x(dtype=torch.float64)).dtype == torch.float64


def test_cross_attention_context_is_checked():
    layer = attention(is_cross=True)
    with pytest.raises(ValueError, match=r"context must have shape .*d_model=16"):
        layer(x(), x(width=8))
    with pytest.raises(
        ValueError, match=r"context must have the batch size of x \(2\)"
    ):
        layer(x(), x(batch=3))
    with pytest.raises(ValueError, match=r"mask must broadcast to .* \(2, 4, 6, 5\)"):
        layer(x(), x(seq=5), mask=causal_mask(T))


def test_a_cache_from_another_model_is_refused():
    layer = attention()
    with pytest.raises(ValueError, match=r"cache does not fit.*\(any, 2, 4, any, 4\)"):
        layer(x(), cache=KVCache(1, B, 2, 10, 8))
    with pytest.raises(ValueError, match=r"cache holds torch.float64 on cpu"):
        layer(x(), cache=KVCache(1, B, HEADS, 10, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"layer_idx must be an integer in \[0, 0\]"):
        layer(x(), cache=KVCache(1, B, HEADS, 10, 4), layer_idx=1)
    with pytest.raises(TypeError, match=r"cache must be a KVCache"):
        layer(x(), cache=(torch.zeros(1), torch.zeros(1)))


# ---------------------------------------------------------------------------- once


def test_layers_inside_a_model_do_not_check_again():
    """A model checks its call once; its attention layers trust what it built."""
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=8))
    with mock.patch.object(
        lm_course.attention,
        "check_attention_call",
        wraps=lm_course.attention.check_attention_call,
    ) as spy:
        model(torch.zeros(2, 5, dtype=torch.long))
        assert spy.call_count == 0
        attention()(x())  # the same layer, used on its own by a reader
        assert spy.call_count == 1
