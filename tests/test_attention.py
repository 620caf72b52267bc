"""Tests for lm_course.attention: the written-out attention, masks and the module."""

import pytest
import torch
import torch.nn.functional as F

from lm_course.attention import (
    MultiHeadAttention,
    causal_mask,
    check_heads,
    fused_attention,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    sliding_window_mask,
    split_heads,
)
from lm_course.positional import alibi_bias

B, H, T, DH = 2, 4, 7, 8


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(B, H, T, DH, generator=g) for _ in range(3))


def mask_kinds():
    lengths = torch.tensor([T, 4])
    return {
        "none": None,
        "causal": causal_mask(T),
        "padding": padding_mask(lengths),
        "window": sliding_window_mask(T, 3),
        "causal+padding": causal_mask(T) & padding_mask(lengths),
    }


# ---------------------------------------------------------------------------- function


@pytest.mark.parametrize("kind", list(mask_kinds()))
def test_manual_matches_torch(qkv, kind):
    q, k, v = qkv
    mask = mask_kinds()[kind]
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert weights.shape == (B, H, T, T)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T))


def test_manual_matches_torch_with_alibi_bias(qkv):
    q, k, v = qkv
    bias, mask = alibi_bias(H, T), causal_mask(T)
    out, _ = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)
    float_mask = bias.masked_fill(~mask, float("-inf"))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_masked_keys_get_zero_weight(qkv):
    q, k, v = qkv
    _, weights = scaled_dot_product_attention(q, k, v, mask=causal_mask(T))
    assert (weights.triu(diagonal=1) == 0).all()


def test_fully_masked_row_gives_zeros_and_no_nan(qkv):
    q, k, v = (t.clone().requires_grad_() for t in qkv)
    mask = torch.ones(T, T, dtype=torch.bool)
    mask[2] = False  # query 2 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (weights[:, :, 2] == 0).all() and (out[:, :, 2] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    # PyTorch's fused kernel agrees on this convention.
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(*qkv, attn_mask=mask)
    )


def test_function_rejects_bad_input(qkv):
    q, k, v = qkv
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(T, T))
    with pytest.raises(ValueError, match="4-D.*split_heads"):
        scaled_dot_product_attention(q[0], k[0], v[0])


# ---------------------------------------------------------------------------- masks


def test_causal_mask_square_and_cache_layout():
    assert torch.equal(
        causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()
    )
    # Two new queries at the end of five keys: positions 3 and 4.
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).bool()
    assert torch.equal(causal_mask(2, 5), expected)
    with pytest.raises(ValueError, match=r"k_len \(2\) must be >= q_len \(3\)"):
        causal_mask(3, 2)
    with pytest.raises(ValueError, match="q_len must be an integer >= 1, got 0"):
        causal_mask(0)


def test_sliding_window_mask():
    expected = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(sliding_window_mask(4, 2), expected)
    assert torch.equal(sliding_window_mask(1, 2, k_len=4), expected[-1:])
    assert torch.equal(sliding_window_mask(5, 99), causal_mask(5))
    with pytest.raises(ValueError, match="window must be an integer >= 1, got 0"):
        sliding_window_mask(4, 0)


def test_padding_mask_from_lengths_and_keep():
    from_lengths = padding_mask(torch.tensor([3, 1]), max_len=4)
    assert from_lengths.shape == (2, 1, 1, 4)
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(from_lengths[:, 0, 0], expected)
    assert torch.equal(padding_mask(expected), from_lengths)
    assert torch.equal(padding_mask(expected.long()), from_lengths)
    with pytest.raises(ValueError, match="only 0 and 1"):
        padding_mask(torch.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="integer"):
        padding_mask(torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match="max_len"):
        padding_mask(torch.tensor([3, 5]), max_len=4)
    with pytest.raises(TypeError, match="tensor"):
        padding_mask([3, 1])


def test_split_and_merge_heads_round_trip():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    # Head h holds dimensions h*4 .. h*4+3 of every position.
    assert torch.equal(heads[:, 1], x[:, :, 4:8])
    assert torch.equal(merge_heads(heads), x)


# ---------------------------------------------------------------------------- module


def test_six_heads_with_512_dimensions_fails_clearly():
    # Article 002, section 4.3: "6 attention heads, embedding dimension 512".
    message = (
        r"d_model=512 is not divisible by n_heads=6.*85\.3.*"
        r"Valid head counts.*\[1, 2, 4, 8, 16, 32, 64\]"
    )
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(512, 6)
    with pytest.raises(ValueError, match=message):
        check_heads(512, 6)


def test_module_rejects_bad_arguments():
    with pytest.raises(ValueError, match="backend must be one of"):
        MultiHeadAttention(16, 2, backend="flash")
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(16, 2, dropout=1.5)
    with pytest.raises(
        ValueError, match=r"x must have shape \(batch, seq, d_model=16\), got \(3, 8\)"
    ):
        MultiHeadAttention(16, 2)(torch.randn(3, 8))
    with pytest.raises(ValueError, match="context="):
        MultiHeadAttention(16, 2, is_cross=True)(torch.randn(1, 3, 16))


def pair(is_cross=False, d_model=32, n_heads=4):
    torch.manual_seed(0)
    fast = MultiHeadAttention(d_model, n_heads, backend="sdpa", is_cross=is_cross)
    slow = MultiHeadAttention(d_model, n_heads, backend="manual", is_cross=is_cross)
    slow.load_state_dict(fast.state_dict())
    return fast, slow


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"is_causal": True},
        {"mask": padding_mask(torch.tensor([T, 3]))},
        {"mask": padding_mask(torch.tensor([T, 3])), "is_causal": True},
        {"mask": sliding_window_mask(T, 2)},
        {"mask": causal_mask(T), "attn_bias": alibi_bias(4, T)},
        {"attn_bias": alibi_bias(4, T), "is_causal": True},
    ],
    ids=[
        "none",
        "causal",
        "padding",
        "padding+causal",
        "window",
        "alibi",
        "alibi+is_causal",
    ],
)
def test_backends_agree(kwargs):
    fast, slow = pair()
    x = torch.randn(B, T, 32)
    torch.testing.assert_close(
        fast(x, **kwargs), slow(x, **kwargs), atol=1e-5, rtol=1e-5
    )


def test_backends_agree_for_cross_attention():
    fast, slow = pair(is_cross=True)
    x, memory = torch.randn(B, T, 32), torch.randn(B, 5, 32)
    mask = padding_mask(torch.tensor([5, 2]))
    torch.testing.assert_close(
        fast(x, memory, mask=mask), slow(x, memory, mask=mask), atol=1e-5, rtol=1e-5
    )


def test_keep_weights_records_heat_map():
    fast, _ = pair()
    fast.keep_weights = True
    fast(torch.randn(B, T, 32), is_causal=True)
    weights = fast.last_weights
    assert weights.shape == (B, 4, T, T)
    assert (weights.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, 4, T))


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
@pytest.mark.parametrize("extra", ["causal", "window", "alibi"])
def test_no_information_flows_from_the_future(backend, extra):
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, backend=backend)
    kwargs = {
        "causal": {"is_causal": True},
        "window": {"mask": sliding_window_mask(6, 3)},
        "alibi": {"mask": causal_mask(6), "attn_bias": alibi_bias(2, 6)},
    }[extra]
    for t in range(6):
        x = torch.randn(1, 6, 16, requires_grad=True)
        attn(x, **kwargs)[0, t].sum().backward()
        assert (x.grad[0, t + 1 :] == 0).all(), f"position {t} sees the future"
        assert (x.grad[0, : t + 1].abs().sum(-1) > 0).all() or extra == "window"


@pytest.mark.parametrize("masked", [False, True])
def test_bfloat16_attention_on_a_cpu_is_computed_in_float32(masked):
    # The CPU's fused kernel is slow in bfloat16, so fused_attention upcasts: its
    # result is float32 attention of the same bfloat16 numbers, rounded once at the end.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 16, 8).bfloat16() for _ in range(3))
    bias = alibi_bias(4, 16, 16).bfloat16() if masked else None
    out = fused_attention(q, k, v, attn_mask=bias, is_causal=not masked)
    full = F.scaled_dot_product_attention(
        q.float(),
        k.float(),
        v.float(),
        attn_mask=None if bias is None else bias.float(),
        is_causal=not masked,
    )
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, full.bfloat16())


def test_a_layer_under_cpu_autocast_trains_like_float32():
    torch.manual_seed(0)
    layer = MultiHeadAttention(32, 4)
    x = torch.randn(3, 10, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = layer(x, is_causal=True)
    mixed.float().sum().backward()
    mixed_grad, x.grad = x.grad, None
    layer(x, is_causal=True).sum().backward()
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed_grad, x.grad, atol=0.05, rtol=0.05)


def test_an_alibi_bias_is_not_rounded_to_bfloat16_on_the_way():
    # The layer hands its float32 bias to the kernel, which computes in float32 on a
    # CPU: the result is exactly float32 attention of the bfloat16 q, k, v.
    torch.manual_seed(0)
    layer = MultiHeadAttention(32, 4)
    q, k, v = (torch.randn(2, 4, 16, 8).bfloat16() for _ in range(3))
    bias = alibi_bias(4, 16, 16) * 1.001  # slopes bfloat16 cannot hold exactly
    out = layer.attend(q, k, v, attn_bias=bias)
    full = F.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), attn_mask=bias
    )
    assert torch.equal(out, full.bfloat16())
