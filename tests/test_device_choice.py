"""One decision for the device: the trainer, the notebooks' setup() and the command line
ask the same function, so a notebook's inputs land where the trainer put the model."""

from __future__ import annotations

import pytest
import torch
from training_helpers import make_model, markov_tokens

from lm_course import notebook
from lm_course.training import (
    LMBatches,
    TrainConfig,
    pick_device,
    train,
    train_val_split,
)
from lm_course.training import device as device_module

META = torch.device("meta")


class _Seen(Exception):
    """Raised by the loss function once it has seen where the model and batch are."""


def test_a_notebook_style_call_works_when_the_device_is_not_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No second device on a CPU machine: "meta" (shapes without numbers) stands in for
    # a GPU, as MPS would on a Mac.
    monkeypatch.setattr(device_module, "default_device", lambda: META)
    device = notebook.setup(seed=0)
    assert device == META and pick_device("auto") == META

    seen = []

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> None:
        seen.append((next(model.parameters()).device, batch[0].device))
        raise _Seen

    model = make_model()
    batches = LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)
    config = TrainConfig(max_steps=1, progress=False)  # device="auto", as notebooks do
    with pytest.raises(_Seen):
        train(model, batches, config, loss_fn=loss_fn)
    assert seen == [(META, META)]  # the trainer chose the same device as setup()

    # The notebook then builds its inputs on `device`, and they meet the model.
    x = torch.randint(0, 16, (2, 5)).to(device)
    logits, loss = model(x, x)
    assert logits.device == META and logits.shape == (2, 5, 16)


def test_the_cli_asks_the_same_function(monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_course import cli

    asked = []
    monkeypatch.setattr(
        device_module, "default_device", lambda: asked.append(1) or torch.device("cpu")
    )
    assert cli.pick_device("auto") == torch.device("cpu") and asked == [1]
