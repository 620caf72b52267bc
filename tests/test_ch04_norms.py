"""The three normalisations of chapter 4: each computes its formula, and they relate as
the chapter says (RMSNorm = sqrt(d) x the article's L2 formula; LayerNorm = RMSNorm of
the centred vector)."""

from __future__ import annotations

import math

import pytest
import torch

from lm_course.models.norms import NORMS, L2Norm, LayerNorm, RMSNorm


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 3.0 + 2.0 * torch.randn(*shape, generator=g)  # a mean far from 0 on purpose


def test_l2norm_is_the_article_formula_and_gives_unit_length() -> None:
    x = _x(4, 7, 128)
    out = L2Norm(128, eps=1e-5)(x)
    expected = x / (torch.sqrt((x * x).sum(-1, keepdim=True)) + 1e-5)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4, 7), atol=1e-5, rtol=0)
    # Each feature shrinks like 1/sqrt(d): the root mean square is 1/sqrt(128).
    rms = out.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.full((4, 7), 1 / math.sqrt(128)))
    assert list(L2Norm(128).parameters()) == []


def test_layernorm_matches_torch_and_centres() -> None:
    x = _x(3, 5, 64)
    ours = LayerNorm(64)
    with torch.no_grad():
        ours.gamma.copy_(torch.linspace(0.5, 1.5, 64))
        ours.beta.copy_(torch.linspace(-1, 1, 64))
    ref = torch.nn.LayerNorm(64)
    ref.load_state_dict({"weight": ours.gamma, "bias": ours.beta})
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    plain = LayerNorm(64, bias=False)(x)
    torch.testing.assert_close(plain.mean(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)
    # biased variance: the population standard deviation is 1
    torch.testing.assert_close(
        plain.std(-1, unbiased=False), torch.ones(3, 5), atol=1e-4, rtol=0
    )
    assert LayerNorm(64, bias=False).beta is None


def test_rmsnorm_matches_torch_and_is_sqrt_d_times_l2() -> None:
    x = _x(2, 9, 96)
    ours = RMSNorm(96, eps=1e-6)
    ref = torch.nn.RMSNorm(96, eps=1e-6)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    l2 = L2Norm(96, eps=0.0)(x)
    no_eps = RMSNorm(96, eps=0.0)(x)
    torch.testing.assert_close(no_eps, math.sqrt(96) * l2, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        ours.gain.fill_(2.0)
    torch.testing.assert_close(ours(x), 2 * ref(x), atol=1e-5, rtol=1e-5)


def test_layernorm_is_rmsnorm_of_the_centred_vector() -> None:
    x = _x(6, 32)
    centred = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(
        LayerNorm(32, bias=False)(x), RMSNorm(32)(centred), atol=1e-5, rtol=1e-5
    )


def test_what_each_is_invariant_to() -> None:
    x = _x(4, 48)
    shift, scale = 5.0, 7.0
    for name, cls in NORMS.items():
        norm = cls(48, eps=0.0)
        # Every one of them forgets the overall scale of a vector ...
        torch.testing.assert_close(norm(scale * x), norm(x), atol=1e-5, rtol=1e-5)
        # ... only LayerNorm forgets a shift of all features by the same amount.
        shifted_same = torch.allclose(norm(x + shift), norm(x), atol=1e-4)
        assert shifted_same == (name == "layernorm"), name


@pytest.mark.parametrize("cls", [L2Norm, LayerNorm, RMSNorm])
def test_argument_and_input_checks(cls) -> None:
    with pytest.raises(ValueError, match="d must be an integer"):
        cls(0)
    with pytest.raises(TypeError, match="d must be an integer"):
        cls(4.0)
    with pytest.raises(ValueError, match="eps must be a finite number"):
        cls(4, eps=-1.0)
    norm = cls(8)
    with pytest.raises(ValueError, match="last dimension must be 8"):
        norm(torch.zeros(2, 7))
    with pytest.raises(TypeError, match="floating-point"):
        norm(torch.zeros(2, 8, dtype=torch.long))
    assert str(8) in repr(norm)


def test_gradients_flow_and_zero_vector_is_finite() -> None:
    for cls in (L2Norm, LayerNorm, RMSNorm):
        x = _x(3, 16).requires_grad_(True)
        cls(16)(x).pow(2).sum().backward()
        assert x.grad is not None and x.grad.isfinite().all()
        assert cls(16)(torch.zeros(2, 16)).isfinite().all()
