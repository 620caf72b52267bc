"""The compiled training step has no graph break; eager calls keep every check.

``torch.compile(fullgraph=True)`` raises at the first graph break, so tracing a model's
forward and loss with it proves the step compiles to one graph. The ``eager`` backend
traces exactly as the real one does but skips code generation, so this runs in a few
seconds on a CPU.
"""

import pytest
import torch

from lm_course.models.encoder import EncoderConfig, TransformerEncoder
from lm_course.models.gpt import GPT, POSITIONAL_KINDS, GPTConfig

VOCAB = 11


def batch(rows: int = 2, seq: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (rows, seq), generator=generator)
    y = torch.randint(0, VOCAB, (rows, seq), generator=generator)
    y[0, 0] = -100  # an ignored position, as padding gives
    return x, y


def compile_step(model: torch.nn.Module):
    """Forward, loss and backward, traced as one graph (raises on a graph break)."""
    compiled = torch.compile(model, fullgraph=True, backend="eager")

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = compiled(x, y)[1]
        loss.backward()
        return loss

    return step


@pytest.mark.parametrize("positional", POSITIONAL_KINDS)
@pytest.mark.parametrize("window", [None, 3])
def test_gpt_training_step_is_one_graph(positional, window):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            VOCAB,
            block_size=8,
            n_layer=1,
            n_head=2,
            d_model=16,
            positional=positional,
            window=window,
        )
    )
    x, y = batch()
    eager_loss = model(x, y)[1]
    torch.testing.assert_close(compile_step(model)(x, y), eager_loss)


def test_encoder_step_is_one_graph():
    # (The LSTM is left out: Dynamo does not trace nn.LSTM itself.)
    torch._dynamo.reset()
    torch.manual_seed(0)
    x, y = batch()
    encoder = TransformerEncoder(
        EncoderConfig(VOCAB, max_len=8, n_layer=1, n_head=2, d_model=16, dropout=0.0)
    )
    compile_step(encoder)(x, y)


def test_eager_calls_still_check_values():
    """The same model, called by a reader outside torch.compile, refuses bad ids."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(VOCAB, block_size=8, n_layer=1, n_head=2, d_model=16))
    x, y = batch()
    compile_step(model)(x, y)
    with pytest.raises(ValueError, match=r"idx contains token id 11, outside"):
        model(torch.tensor([[1, VOCAB]]))
    with pytest.raises(ValueError, match=r"targets contains 11, outside \[0, 10\]"):
        model(x, torch.full_like(x, VOCAB))
