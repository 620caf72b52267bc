"""Counting a step's FLOPs, profiling it by kind, measuring saved activations, and
gradient checkpointing that changes memory but not results."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from lm_course.costs import (
    KINDS,
    count_flops,
    gradient_checkpointing,
    saved_activation_bytes,
    time_by_kind,
)
from lm_course.models.gpt import GPT, GPTConfig

B, T = 4, 32


def _model(attention: str = "manual", dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=65,
        block_size=T,
        n_layer=2,
        n_head=4,
        d_model=64,
        attention=attention,
        dropout=dropout,
    )
    return GPT(config)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randint(0, 65, (B, T), generator=generator) for _ in range(2))


def test_flops_of_a_training_step_are_6n_plus_attention() -> None:
    model = _model()
    x, y = _batch()
    counts = count_flops(lambda: model(x, y)[1].backward())
    gains = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    weights = model.num_params() - gains  # layer-norm gains do no matrix products
    c = model.config
    expected = 6 * weights * B * T + 12 * c.n_layer * c.d_model * T * B * T
    assert counts["total"] == expected
    assert counts["aten.bmm"] == 12 * c.n_layer * c.d_model * T * B * T


def test_the_profile_splits_the_time_by_kind() -> None:
    model = _model(attention="sdpa")
    x, y = _batch()
    seconds = time_by_kind(lambda: model(x, y)[1].backward(), repeats=2)
    assert list(seconds) == list(KINDS)
    assert seconds["matrix products"] > 0 and seconds["attention kernel"] > 0
    assert seconds["everything else"] > 0


def test_the_profile_keeps_its_log_lines_out_of_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    time_by_kind(lambda: torch.ones(8, 8) @ torch.ones(8, 8), repeats=1)
    print("still here", file=sys.stderr)
    err = capfd.readouterr().err
    assert err.strip() == "still here"
    os.write(2, b"fd 2 works\n")
    assert capfd.readouterr().err == "fd 2 works\n"


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_checkpointing_saves_memory_and_changes_no_gradient(dropout: float) -> None:
    model = _model(attention="sdpa", dropout=dropout)
    x, y = _batch()

    def step() -> list[torch.Tensor]:
        model.zero_grad()
        torch.manual_seed(5)  # the same dropout masks in both runs
        model(x, y)[1].backward()
        return [p.grad.clone() for p in model.parameters()]

    params = list(model.parameters())
    plain_bytes = saved_activation_bytes(step, params)
    plain = step()
    with gradient_checkpointing(model.blocks):
        kept_bytes = saved_activation_bytes(step, params)
        checkpointed = step()
    assert kept_bytes < 0.5 * plain_bytes
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert "forward" not in vars(model.blocks[0])  # the wrapper is gone again
    assert saved_activation_bytes(step, params) == plain_bytes


def test_saved_bytes_count_each_storage_once_and_skip_the_excluded() -> None:
    w = torch.randn(16, 16, requires_grad=True)
    x = torch.randn(8, 16, requires_grad=True)

    def fn() -> None:
        h = x @ w  # saves x (512 bytes) and w (1,024 bytes)
        (h * h).sum().backward()  # saves h (512 bytes) twice, counted once

    assert saved_activation_bytes(fn, [w]) == 2 * 8 * 16 * 4
    assert saved_activation_bytes(fn) == 2 * 8 * 16 * 4 + 16 * 16 * 4
