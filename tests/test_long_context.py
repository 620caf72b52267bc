"""Longer contexts: RoPE position interpolation, extending a model, loss by position."""

import dataclasses

import pytest
import torch

from lm_course.models.context import extend_context, loss_by_position
from lm_course.models.gpt import GPT, GPTConfig
from lm_course.positional import RotaryEmbedding, apply_rotary

VOCAB = 13


def gpt(positional: str, **overrides) -> GPT:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, block_size=16, n_layer=2, n_head=2, d_model=16)
    return GPT(GPTConfig(**{**config, "positional": positional, **overrides})).eval()


def ids(n: int = 200) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n,), generator=torch.Generator().manual_seed(3))


# ------------------------------------------------------------------ interpolation


def test_interpolation_rotates_position_p_as_p_over_scale():
    x = torch.randn(1, 2, 12, 8, generator=torch.Generator().manual_seed(0))
    scaled = apply_rotary(x, scale=4.0)
    by_hand = apply_rotary(x, positions=torch.arange(12) / 4.0)
    torch.testing.assert_close(scaled, by_hand)
    module = RotaryEmbedding(8, 12, scale=4.0)
    torch.testing.assert_close(module(x), scaled)
    # Scale 1 is the plain rotation, bit for bit.
    assert torch.equal(RotaryEmbedding(8, 12, scale=1.0)(x), RotaryEmbedding(8, 12)(x))
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        RotaryEmbedding(8, 12, scale=0.0)


def test_interpolated_angles_stay_within_the_trained_ones():
    trained, scale = 16, 4
    longer = RotaryEmbedding(8, trained * scale, scale=scale)
    plain = RotaryEmbedding(8, trained)
    # Every scale-th interpolated position is a trained one; the others fall between.
    assert torch.allclose(longer.cos[::scale], plain.cos, atol=1e-6)
    assert torch.allclose(longer.sin[::scale], plain.sin, atol=1e-6)


def test_rope_scale_only_for_rope():
    with pytest.raises(ValueError, match="interpolates RoPE positions"):
        GPTConfig(VOCAB, block_size=8, positional="alibi", rope_scale=2.0)
    assert GPTConfig(VOCAB, block_size=8, positional="rope", rope_scale=2).rope_scale


# ------------------------------------------------------------------ extension


@pytest.mark.parametrize("positional", ["sinusoidal", "rope", "alibi"])
def test_an_extended_model_predicts_the_first_positions_as_before(positional):
    model = gpt(positional)
    longer = extend_context(model, 64)
    assert longer.config.block_size == 64 and not longer.training
    x = ids(16)[None]
    torch.testing.assert_close(longer(x)[0], model(x)[0])
    assert longer(ids(64)[None])[0].shape == (1, 64, VOCAB)
    # The original keeps its context.
    with pytest.raises(ValueError, match="block_size=16"):
        model(ids(64)[None])


def test_extension_leaves_the_random_state_alone():
    model = gpt("rope")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    extend_context(model, 32)
    assert torch.equal(torch.rand(3), expected)


def test_learned_positions_cannot_be_extended_but_can_be_cut():
    model = gpt("learned")
    with pytest.raises(ValueError, match="none for position 16 or later"):
        extend_context(model, 32)
    shorter = extend_context(model, 8)
    x = ids(8)[None]
    torch.testing.assert_close(shorter(x)[0], model(x)[0])


def test_rope_scale_changes_the_model_and_is_kept():
    model = gpt("rope")
    interpolated = extend_context(model, 64, rope_scale=4.0)
    assert interpolated.config.rope_scale == 4.0
    assert extend_context(interpolated, 64).config.rope_scale == 4.0
    x = ids(16)[None]
    assert not torch.allclose(interpolated(x)[0], model(x)[0])
    with pytest.raises(TypeError, match="model must be a GPT"):
        extend_context(dataclasses.asdict(model.config), 32)


def test_with_a_window_rope_reads_a_long_text_as_a_short_one():
    """RoPE scores depend on distance only: a one-layer model whose queries each see
    the last 16 keys predicts the end of a long text as it predicts a text of 16."""
    model = gpt("rope", n_layer=1)
    windowed = extend_context(model, 64, window=16)
    assert windowed.config.window == 16
    x = ids(64)[None]
    torch.testing.assert_close(windowed(x)[0][:, -1], model(x[:, -16:])[0][:, -1])
    # Absolute positions do not have that property.
    sinusoidal = gpt("sinusoidal", n_layer=1)
    longer = extend_context(sinusoidal, 64, window=16)
    assert not torch.allclose(longer(x)[0][:, -1], sinusoidal(x[:, -16:])[0][:, -1])


# ------------------------------------------------------------------ loss by position


def test_loss_by_position_averages_windows_and_matches_the_model_loss():
    model = gpt("alibi")
    stream = ids(16 * 5 + 1)
    by_position = loss_by_position(model, stream, 16, batch_size=2)
    assert by_position.shape == (16,)
    x = stream[:-1].view(5, 16)
    y = stream[1:].view(5, 16)
    _, loss = model(x, y)
    torch.testing.assert_close(by_position.mean(), loss, atol=1e-5, rtol=1e-5)
    # A ragged tail is dropped; the model is left in the mode it was in.
    model.train()
    ragged = torch.cat([stream, ids(8)])
    torch.testing.assert_close(loss_by_position(model, ragged, 16), by_position)
    assert model.training


def test_loss_by_position_checks_its_inputs():
    model = gpt("rope")
    with pytest.raises(ValueError, match="not enough for one window"):
        loss_by_position(model, ids(10), 16)
    with pytest.raises(ValueError, match="1-D tensor"):
        loss_by_position(model, ids(40).view(2, 20), 16)
    with pytest.raises(ValueError, match="ids contains token id 13"):
        loss_by_position(model, torch.full((40,), VOCAB), 16)
    with pytest.raises(ValueError, match="block_size=16"):
        loss_by_position(model, ids(100), 32)
