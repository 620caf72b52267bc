"""Int8 quantisation: per-channel weights, per-token activations, integer products, and
a quantised GPT that stays close to the float one at a quarter of the bytes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lm_course.compression import (
    Int8Linear,
    dequantize,
    int_matmul,
    quantize_model,
    quantize_per_channel,
    quantize_per_token,
    state_bytes,
)
from lm_course.models.gpt import GPT, GPTConfig


def _weights(rows: int = 48, cols: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    # Rows of very different sizes: a per-matrix scale would crush the small ones.
    sizes = torch.logspace(-3, 0, rows)[:, None]
    return torch.randn(rows, cols, generator=generator) * sizes


@pytest.mark.parametrize("bits", [8, 4])
def test_per_channel_rounding_error_is_at_most_half_a_step(bits: int) -> None:
    w = _weights()
    q = quantize_per_channel(w, bits)
    top = 2 ** (bits - 1) - 1
    assert q.values.dtype == torch.int8 and q.scale.shape == (48,)
    assert int(q.values.abs().max()) == top
    # Each row's largest weight lands on +-top: the whole range is used.
    assert (q.values.abs().amax(1) == top).all()
    error = (dequantize(q) - w).abs()
    assert (error <= q.scale[:, None] / 2 + 1e-9).all()
    # Relative to each row's size the error is the same for small and large rows.
    relative = error.amax(1) / w.abs().amax(1)
    assert relative.max() <= 0.5 / top + 1e-6


def test_a_row_of_zeros_stays_zero() -> None:
    w = torch.zeros(3, 4)
    w[1] = torch.tensor([1.0, -2.0, 0.5, 0.0])
    q = quantize_per_channel(w)
    assert torch.isfinite(q.scale).all()
    assert torch.equal(dequantize(q)[0], torch.zeros(4))


def test_quantize_checks_its_input() -> None:
    with pytest.raises(ValueError, match="float matrix"):
        quantize_per_channel(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="bits must be an integer"):
        quantize_per_channel(torch.ones(2, 3), bits=16)


def test_per_token_activations() -> None:
    x = _weights(20, 64) * 10
    values, scale = quantize_per_token(x)
    assert values.dtype == torch.int8 and scale.shape == (20,)
    assert (
        (values.float() * scale[:, None] - x).abs() <= scale[:, None] / 2 + 1e-6
    ).all()


@pytest.mark.parametrize("rows", [4, 40])  # the int32 fallback and the int8 kernel
def test_integer_products_are_exact(rows: int) -> None:
    generator = torch.Generator().manual_seed(1)
    a = torch.randint(-127, 128, (rows, 64), dtype=torch.int8, generator=generator)
    b = torch.randint(-127, 128, (64, 24), dtype=torch.int8, generator=generator)
    out = int_matmul(a, b)
    assert out.dtype == torch.int32
    assert torch.equal(out, a.long().matmul(b.long()).int())


@pytest.mark.parametrize("bias", [False, True])
def test_int8_linear_modes(bias: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 32, bias=bias)
    x = torch.randn(3, 5, 64)
    weight_only = Int8Linear(linear, "weight")
    expected = F.linear(x, dequantize(quantize_per_channel(linear.weight)), linear.bias)
    torch.testing.assert_close(weight_only(x), expected)
    dynamic = Int8Linear(linear, "dynamic")(x)
    exact = linear(x).detach()
    assert dynamic.shape == (3, 5, 32)
    # Two roundings of at most half a step each: about 1% of the output's size.
    assert (dynamic - exact).norm() / exact.norm() < 0.02
    with pytest.raises(ValueError, match="mode must be one of"):
        Int8Linear(linear, "int4")


def test_quantized_gpt_is_close_and_four_times_smaller() -> None:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, d_model=64)
    model = GPT(config).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(0, 65, (2, 32))
    for mode in ("weight", "dynamic"):
        small = quantize_model(model, mode).eval()
        replaced = [m for m in small.modules() if isinstance(m, Int8Linear)]
        assert len(replaced) == 8  # 4 matrices a block; the tied head stays float
        assert isinstance(small.lm_head, nn.Linear)
        assert small.lm_head.weight is small.tok_emb.weight
        with torch.no_grad():
            gap = (small(ids)[0] - model(ids)[0]).abs().max()
        assert gap < 0.05
    for key, value in model.state_dict().items():  # the original is untouched
        assert torch.equal(value, before[key])
    linear_bytes = sum(
        4 * m.weight.numel()
        for m in model.modules()
        if isinstance(m, nn.Linear) and m is not model.lm_head
    )
    saved = state_bytes(model) - state_bytes(quantize_model(model))
    # Each int8 weight saves 3 of its 4 bytes, less 4 bytes of scale per row.
    assert 0.7 * linear_bytes < saved < 0.75 * linear_bytes
