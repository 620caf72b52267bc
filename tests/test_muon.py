"""Muon: Newton-Schulz orthogonalisation, which parameters it takes, its AdamW half,
training through the trainer, and bit-identical resumption from its checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from training_helpers import markov_tokens

from lm_course.models.gpt import GPT, GPTConfig
from lm_course.training import (
    LMBatches,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    make_optimizer,
    train,
    train_val_split,
)
from lm_course.training.muon import Muon, muon_matrices, newton_schulz
from lm_course.training.optimizer import set_learning_rate

CPU = {"device": "cpu", "progress": False}


def _gpt(seed: int = 0, tie: bool = True) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(
        vocab_size=16, block_size=12, n_layer=2, n_head=2, d_model=16, tie_weights=tie
    )
    return GPT(config)


@pytest.fixture(scope="module")
def batches() -> LMBatches:
    return LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)


@pytest.mark.parametrize("shape", [(64, 16), (16, 64), (48, 48), (200, 30)])
def test_newton_schulz_sets_singular_values_near_one_and_keeps_the_vectors(
    shape: tuple[int, int],
) -> None:
    generator = torch.Generator().manual_seed(0)
    # Singular values spread over four orders of magnitude, like a real gradient's.
    u, _, vh = torch.linalg.svd(torch.randn(*shape, generator=generator), False)
    spread = torch.logspace(0, -4, min(shape))
    matrix = u @ torch.diag(spread) @ vh
    out = newton_schulz(matrix, steps=5)
    assert out.shape == matrix.shape and out.dtype == matrix.dtype
    # In the singular basis of the input the output is diagonal: same vectors.
    inner = u.T @ out @ vh.T
    off = inner - torch.diag(torch.diagonal(inner))
    assert off.abs().max() < 1e-4
    values = torch.diagonal(inner)
    # The quintic pushes values of 1e-2 and more into about [0.7, 1.2]; even 1e-4
    # grows by two orders of magnitude, while a plain normalisation would leave it.
    assert ((values[spread >= 1e-2] > 0.6) & (values[spread >= 1e-2] < 1.25)).all()
    assert values[-1] > 100 * spread[-1] / spread[0]


def test_newton_schulz_checks_its_input() -> None:
    with pytest.raises(ValueError, match="needs a matrix"):
        newton_schulz(torch.ones(3, 4, 5))
    with pytest.raises(TypeError, match="steps must be an integer"):
        newton_schulz(torch.ones(3, 4), steps=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("tie", [True, False])
def test_muon_takes_the_hidden_matrices_only(tie: bool) -> None:
    model = _gpt(tie=tie)
    names = {id(p): n for n, p in model.named_parameters()}
    chosen = sorted(names[id(p)] for p in muon_matrices(model))
    expected = sorted(
        f"blocks.{i}.{layer}.weight"
        for i in range(2)
        for layer in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")
    )
    assert chosen == expected  # no embedding, no output layer, no gain


def test_a_muon_group_refuses_vectors() -> None:
    vector = nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match="only 2-D parameters"):
        Muon([{"params": [vector], "use_muon": True}])


def test_the_adamw_half_matches_torch_adamw() -> None:
    torch.manual_seed(0)
    a = nn.Parameter(torch.randn(5, 3))
    b = nn.Parameter(a.detach().clone())
    settings = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    ours = Muon([{"params": [a]}], **settings)
    reference = torch.optim.AdamW([b], **settings)
    for step in range(6):
        grad = torch.randn(5, 3, generator=torch.Generator().manual_seed(step))
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        reference.step()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_muon_step_moves_along_the_orthogonalised_gradient() -> None:
    weight = nn.Parameter(torch.zeros(8, 4))
    grad = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    weight.grad = grad
    optimizer = Muon([{"params": [weight], "use_muon": True}], lr=0.1, momentum=0.9)
    optimizer.step()
    # First step: momentum = g, Nesterov direction g + 0.9 g; the size is lost anyway.
    expected = -0.1 * (8 / 4) ** 0.5 * newton_schulz(1.9 * grad)
    torch.testing.assert_close(weight.detach(), expected)
    assert torch.equal(optimizer.state[weight]["momentum_buffer"], grad)


def test_the_default_optimizer_stays_adamw_and_muon_is_chosen_by_the_config() -> None:
    model = _gpt()
    cpu = torch.device("cpu")
    assert (
        type(make_optimizer(model, TrainConfig(max_steps=1), cpu)) is torch.optim.AdamW
    )
    config = TrainConfig(max_steps=1, lr=2e-3, optimizer="muon", muon_lr=0.04)
    optimizer = make_optimizer(model, config, cpu)
    assert isinstance(optimizer, Muon)
    muon_group, *adamw_groups = optimizer.param_groups
    assert muon_group["use_muon"] and len(muon_group["params"]) == 8
    assert not any(group["use_muon"] for group in adamw_groups)
    # The schedule's rate is the AdamW one; Muon's follows it from its own peak.
    set_learning_rate(optimizer, 1e-3)
    assert muon_group["lr"] == pytest.approx(0.02)
    assert [g["lr"] for g in adamw_groups] == [1e-3, 1e-3]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("optimizer", "sgd", ValueError),
        ("optimizer", 1, TypeError),
        ("muon_lr", 0.0, ValueError),
        ("muon_lr", "0.05", TypeError),
        ("muon_momentum", 1.0, ValueError),
        ("muon_weight_decay", -0.1, ValueError),
    ],
)
def test_train_config_checks_the_muon_fields(
    field: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"TrainConfig.{field}"):
        TrainConfig(max_steps=1, **{field: value})


def test_muon_trains_a_gpt(batches: LMBatches) -> None:
    model = _gpt()
    config = TrainConfig(
        max_steps=40, lr=1e-2, optimizer="muon", eval_batches=4, **CPU, seed=0
    )
    history = train(model, batches, config)
    # From ln 16 = 2.77 nats (uniform) to well within reach of the 0.99 the data's
    # randomness allows; the 40 steps take a few seconds.
    assert history.val_loss[-1] < 1.5


class _StopAt:
    """Wraps get_batch; raises KeyboardInterrupt at the start of training step
    ``at``."""

    def __init__(self, batches: LMBatches, at: int) -> None:
        self.batches, self.left = batches, at

    def __call__(self, split: str, generator: torch.Generator):
        if torch.is_grad_enabled():
            if self.left == 0:
                raise KeyboardInterrupt
            self.left -= 1
        return self.batches(split, generator)


# The cpu preset's recipe: Muon under bfloat16 autocast (attention upcast inside).
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_resumed_muon_run_is_bit_identical(
    tmp_path: Path, batches: LMBatches, precision: str
) -> None:
    settings = dict(
        precision=precision,
        max_steps=12,
        lr=3e-3,
        warmup_steps=3,
        optimizer="muon",
        muon_lr=0.03,
        muon_weight_decay=0.01,
        eval_batches=2,
        **CPU,
    )
    straight = _gpt()
    train(straight, batches, TrainConfig(**settings, checkpoint_dir=tmp_path / "a"))

    run_dir = tmp_path / "b"
    config = TrainConfig(**settings, checkpoint_dir=run_dir)
    with pytest.raises(KeyboardInterrupt):
        train(_gpt(), _StopAt(batches, 5), config)
    assert latest_checkpoint(run_dir).name == "step-000005"
    resumed = _gpt(seed=9)  # the checkpoint must bring back weights and Muon's state
    train(resumed, batches, config)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name

    # Both halves of the state went through the checkpoint files.
    model = _gpt(seed=3)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    load_checkpoint(run_dir, model, optimizer)
    kinds = {key for state in optimizer.state.values() for key in state}
    assert kinds == {"momentum_buffer", "step", "exp_avg", "exp_avg_sq"}
    assert optimizer.param_groups[0]["use_muon"]
