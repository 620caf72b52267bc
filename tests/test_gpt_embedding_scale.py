"""``GPTConfig.scale_embeddings``: token vectors times sqrt(d_model), off by default."""

import torch

from lm_course.models.gpt import GPT, GPTConfig


def test_scaled_embeddings_multiply_the_token_vectors_only():
    torch.manual_seed(0)
    plain = GPT(GPTConfig(11, block_size=8, n_layer=1, d_model=16, positional="rope"))
    torch.manual_seed(0)
    scaled = GPT(
        GPTConfig(
            11,
            block_size=8,
            n_layer=1,
            d_model=16,
            positional="rope",
            scale_embeddings=True,
        )
    )
    scaled.load_state_dict(plain.state_dict())  # the same weights
    captured = {}
    for name, model in (("plain", plain), ("scaled", scaled)):
        model.blocks[0].ln1.register_forward_hook(
            lambda m, inputs, out, name=name: captured.__setitem__(name, inputs[0])
        )
        model(torch.arange(8)[None] % 11)
    torch.testing.assert_close(captured["scaled"], 4.0 * captured["plain"])
    assert not GPTConfig(11, block_size=8).scale_embeddings
