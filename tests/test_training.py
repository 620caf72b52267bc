"""The training package: schedules, config checks, devices, batches and the loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from training_helpers import VOCAB, make_model, markov_tokens

from lm_course.training import (
    History,
    LMBatches,
    TrainConfig,
    autocast,
    cosine_decay,
    default_loss,
    derive_seed,
    describe_device,
    evaluate,
    lr_at_step,
    make_generator,
    make_optimizer,
    pick_device,
    resolve_precision,
    seed_everything,
    train,
    train_val_split,
    warmup_factor,
)

CPU = {"device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def batches() -> LMBatches:
    return LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)


# --- schedules ------------------------------------------------------------------------


def test_warmup_is_linear_up_to_the_peak() -> None:
    rates = [
        lr_at_step(s, max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=4)
        for s in range(5)
    ]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0)  # cosine starts at the peak
    assert warmup_factor(10, 0) == 1.0


def test_cosine_decays_to_min_lr() -> None:
    kw = {"max_steps": 110, "lr": 1.0, "min_lr": 0.1, "warmup_steps": 10}
    assert lr_at_step(60, **kw) == pytest.approx(
        0.55
    )  # half way: the mean of lr and min_lr
    assert lr_at_step(110, **kw) == pytest.approx(0.1)
    assert lr_at_step(500, **kw) == pytest.approx(0.1)  # stays at min_lr past the end
    rates = [lr_at_step(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert cosine_decay(0.25, 1.0, 0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )


def test_constant_schedule_and_config_defaults() -> None:
    assert lr_at_step(50, max_steps=100, lr=3e-4, min_lr=0, schedule="constant") == 3e-4
    config = TrainConfig(max_steps=100, lr=1e-3)
    assert config.final_lr == pytest.approx(1e-4)
    assert config.lr_at(100) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr_at_step(0, max_steps=10, lr=1.0, min_lr=0.0, schedule="linear")
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        lr_at_step(-1, max_steps=10, lr=1.0, min_lr=0.0)


# --- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"max_steps": 0}, ValueError, r"max_steps must be an integer >= 1, got 0"),
        (
            {"max_steps": 10.0},
            TypeError,
            r"max_steps must be an integer >= 1, got 10.0",
        ),
        ({"lr": 0}, ValueError, r"lr must be a finite number > 0, got 0"),
        (
            {"lr": "fast"},
            TypeError,
            r"lr must be a finite number > 0, got 'fast' \(str",
        ),
        ({"lr": math.inf}, ValueError, r"TrainConfig.lr must be a finite .* got inf"),
        ({"lr": math.nan}, ValueError, r"TrainConfig.lr must be a finite .* got nan"),
        ({"min_lr": 1.0}, ValueError, r"min_lr=1.0 is above lr=0.001.*min_lr <= lr"),
        ({"min_lr": -1.0}, ValueError, r"min_lr must be a finite number >= 0, got -1"),
        ({"min_lr": math.inf}, ValueError, r"min_lr must be a finite number"),
        ({"warmup_steps": -1}, ValueError, r"warmup_steps must be an integer >= 0"),
        ({"warmup_steps": 200}, ValueError, r"warmup_steps=200 exceeds max_steps=100"),
        (
            {"schedule": "linear"},
            ValueError,
            r"schedule must be one of \('cosine', 'constant'\), got 'linear'",
        ),
        (
            {"weight_decay": -0.1},
            ValueError,
            r"weight_decay must be a finite number >=",
        ),
        (
            {"weight_decay": math.inf},
            ValueError,
            r"weight_decay must be a finite .*inf",
        ),
        (
            {"betas": (0.9,)},
            ValueError,
            r"betas must be two numbers in \[0, 1\).*got \(0.9,\)",
        ),
        ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be a finite number >= 0"),
        ({"betas": (math.nan, 0.9)}, ValueError, r"betas\[0\] must be a finite number"),
        ({"grad_clip": -1.0}, ValueError, r"grad_clip must be a finite number >= 0"),
        ({"grad_clip": math.inf}, ValueError, r"grad_clip must be a finite .* got inf"),
        ({"grad_accum": 0}, ValueError, r"grad_accum must be an integer >= 1, got 0"),
        (
            {"eval_every": -5},
            ValueError,
            r"eval_every must be an integer >= 0, got -5 \(0 evaluates only",
        ),
        (
            {"eval_batches": -1},
            ValueError,
            r"eval_batches must be an integer >= 0, got -1 \(0 turns",
        ),
        ({"log_every": 0}, ValueError, r"log_every must be an integer >= 1, got 0"),
        ({"device": 0}, TypeError, r"device must be a string such as 'auto'"),
        (
            {"precision": "float16"},
            ValueError,
            r"precision must be one of .*got 'float16'",
        ),
        ({"compile": "yes"}, TypeError, r"compile must be True or False, got 'yes'"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"seed": True}, TypeError, r"seed must be an integer >= 0, got True \(bool"),
        (
            {"checkpoint_dir": 3},
            TypeError,
            r"checkpoint_dir must be a path or None, got 3",
        ),
        (
            {"checkpoint_every": 10},
            ValueError,
            r"checkpoint_every=10 needs somewhere.*checkpoint_dir",
        ),
        (
            {"checkpoint_every": -1, "checkpoint_dir": "x"},
            ValueError,
            r"checkpoint_every must be an integer >= 0",
        ),
        (
            {"keep_checkpoints": 0},
            ValueError,
            r"keep_checkpoints must be an integer >= 1, got 0 \(None keeps",
        ),
        ({"progress": 1}, TypeError, r"progress must be True or False, got 1"),
        ({"flush_denormal": None}, TypeError, r"flush_denormal must be True or False"),
        (
            {"time_budget_s": 0},
            ValueError,
            r"time_budget_s must be a finite number > 0",
        ),
        ({"time_budget_s": math.inf}, ValueError, r"time_budget_s must be a finite"),
        (
            {"max_steps": None},
            ValueError,
            r"needs max_steps .*, time_budget_s .*or both",
        ),
    ],
)
def test_config_errors_name_the_field_and_the_value(
    changes: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TrainConfig(**{"max_steps": 100, **changes})


def test_config_round_trips_through_a_dict(tmp_path) -> None:
    config = TrainConfig(max_steps=5, checkpoint_dir=tmp_path, betas=[0.8, 0.9])
    assert config.betas == (0.8, 0.9)
    data = config.to_dict()
    assert data["checkpoint_dir"] == str(tmp_path) and data["betas"] == [0.8, 0.9]
    assert TrainConfig.from_dict(data).betas == (0.8, 0.9)
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['epochs'\]"):
        TrainConfig.from_dict({**data, "epochs": 3})


# --- devices and seeds ----------------------------------------------------------------


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert pick_device("auto") == torch.device("cpu")
        with pytest.raises(
            ValueError, match=r"device='cuda' is not available.*\['cpu'\]"
        ):
            pick_device("cuda")
    with pytest.raises(
        ValueError, match=r"device='gpu0' is not a device name; use 'auto' or"
    ):
        pick_device("gpu0")
    with pytest.raises(TypeError, match="device must be a string"):
        pick_device(None)  # type: ignore[arg-type]
    assert describe_device(torch.device("cpu")).startswith("cpu (")


def test_precision_and_autocast_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "auto") == torch.float32
    a = torch.randn(4, 4)
    with autocast(cpu, "float32"):
        assert (a @ a).dtype == torch.float32
    with autocast(cpu, "bfloat16"):
        assert (a @ a).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of .* got 'fp8'"):
        resolve_precision(cpu, "fp8")


def test_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(1337, 1, 5, 0) == derive_seed(1337, 1, 5, 0)
    seeds = {
        derive_seed(1337, 1, step, micro) for step in range(100) for micro in range(4)
    }
    assert len(seeds) == 400
    assert torch.equal(
        torch.rand(3, generator=make_generator(1, 2)),
        torch.rand(3, generator=make_generator(1, 2)),
    )
    seed_everything(3)
    first = torch.rand(2)
    seed_everything(3)
    assert torch.equal(first, torch.rand(2))
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -3"):
        seed_everything(-3)


# --- batches --------------------------------------------------------------------------


def test_lm_batches_shift_targets_by_one(batches: LMBatches) -> None:
    x, y = batches("train", torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 12) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    again, _ = batches("train", torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    assert batches.tokens_per_batch() == 96
    assert "LMBatches(train=3,600, val=400 tokens" in repr(batches)


def test_lm_batches_errors(batches: LMBatches) -> None:
    with pytest.raises(
        ValueError, match=r"unknown split 'test'; this LMBatches has \['train', 'val'\]"
    ):
        batches("test", torch.Generator())
    with pytest.raises(TypeError, match="generator must be a torch.Generator, got int"):
        batches("train", 0)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"splits\['val'\] has 5 tokens.*block_size=8 needs at least 9"
    ):
        LMBatches({"train": torch.arange(100), "val": torch.arange(5)}, 8, 2)
    with pytest.raises(
        ValueError, match=r"must be 1-D \(n_tokens,\), got shape \(2, 50\)"
    ):
        LMBatches({"train": torch.zeros(2, 50, dtype=torch.long)}, 8, 2)
    with pytest.raises(
        TypeError, match="must hold integer token ids, got dtype torch.float32"
    ):
        LMBatches({"train": torch.zeros(50)}, 8, 2)
    with pytest.raises(
        ValueError, match="block_size must be a positive integer, got 0"
    ):
        LMBatches({"train": torch.arange(50)}, 0, 2)
    with pytest.raises(TypeError, match="splits must be a non-empty dict"):
        LMBatches(torch.arange(50), 8, 2)  # type: ignore[arg-type]


def test_train_val_split() -> None:
    parts = train_val_split(list(range(100)), val_fraction=0.2)
    assert parts["train"].tolist() == list(range(80)) and parts["val"].tolist() == list(
        range(80, 100)
    )
    with pytest.raises(
        ValueError, match="val_fraction must be between 0 and 1 .* got 1.5"
    ):
        train_val_split(torch.arange(100), 1.5)
    with pytest.raises(
        ValueError, match="val_fraction=0.1 of 5 tokens leaves an empty split"
    ):
        train_val_split(torch.arange(5), 0.1)


# --- the loop -------------------------------------------------------------------------


def test_training_lowers_the_loss(batches: LMBatches) -> None:
    model = make_model()
    config = TrainConfig(
        max_steps=60, lr=1e-2, warmup_steps=5, eval_every=20, eval_batches=4, **CPU
    )
    before = evaluate(model, batches, "val", batches=4, seed=config.seed)
    history = train(model, batches, config)
    assert before == pytest.approx(math.log(VOCAB), abs=0.3)
    assert history.val_loss[-1] < before - 1.0
    assert history.eval_steps == [20, 40, 60]
    assert history.steps == [10, 20, 30, 40, 50, 60]
    assert history.tokens_seen[-1] == 60 * 8 * 12
    assert len(history.lr) == len(history.grad_norm) == len(history.elapsed) == 6
    assert history.lr[0] == pytest.approx(config.lr_at(9))
    assert history.device.startswith("cpu") and history.precision == "float32"
    assert model.training  # the model's mode is restored
    # Evaluation uses the same fixed batches every time: one model, one loss.
    assert evaluate(
        model, batches, "val", batches=4, seed=config.seed
    ) == pytest.approx(history.val_loss[-1], abs=1e-6)
    assert History.from_dict(history.to_dict()) == history


def test_weight_decay_groups_and_optimizer_choice() -> None:
    optimizer = make_optimizer(
        make_model(), TrainConfig(max_steps=1, weight_decay=0.2), torch.device("cpu")
    )
    decayed, plain = optimizer.param_groups
    assert [p.dim() for p in decayed["params"]] == [2, 2] and decayed[
        "weight_decay"
    ] == 0.2
    assert all(p.dim() == 1 for p in plain["params"]) and plain["weight_decay"] == 0.0
    # The fused kernel runs on the CPU too, from PyTorch 2.4 on.
    assert bool(optimizer.defaults["fused"]) is _TORCH_2_4
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        make_optimizer(frozen, TrainConfig(max_steps=1), torch.device("cpu"))


_VERSION = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
_TORCH_2_4 = _VERSION >= (2, 4)


def test_fused_adamw_only_where_this_pytorch_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lm_course.training import optimizer as optimizer_module

    assert optimizer_module.fused_adamw_available("cpu") is _TORCH_2_4
    assert not optimizer_module.fused_adamw_available("meta")
    monkeypatch.setattr(optimizer_module, "fused_adamw_available", lambda kind: False)
    optimizer = make_optimizer(
        make_model(), TrainConfig(max_steps=1), torch.device("cpu")
    )
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]


def test_gradient_accumulation_equals_one_big_batch() -> None:
    """k micro-batches of b rows give the same update as one batch of k * b rows."""
    data = torch.randint(
        0, VOCAB, (4 * 16, 9), generator=torch.Generator().manual_seed(1)
    )

    def sequential(rows: int):
        calls = {"n": 0}

        def get_batch(split: str, generator: torch.Generator):
            start = calls["n"] * rows % len(data)
            calls["n"] += 1
            chunk = data[start : start + rows]
            return chunk[:, :-1], chunk[:, 1:]

        return get_batch

    results = []
    for grad_accum, rows in [(1, 16), (4, 4)]:
        model = make_model(dropout=0.0)
        config = TrainConfig(
            max_steps=8, lr=1e-2, grad_accum=grad_accum, eval_batches=0, **CPU
        )
        train(model, sequential(rows), config)
        results.append(model.state_dict())
    for name, tensor in results[0].items():
        torch.testing.assert_close(
            results[1][name], tensor, atol=1e-6, rtol=1e-5, msg=name
        )


def test_train_argument_errors(batches: LMBatches) -> None:
    config = TrainConfig(max_steps=2, eval_batches=0, **CPU)
    with pytest.raises(
        TypeError, match="model must be a torch.nn.Module, got function"
    ):
        train(lambda x: x, batches, config)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a TrainConfig.*got dict"):
        train(make_model(), batches, {"max_steps": 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="get_batch must be a function"):
        train(make_model(), "shakespeare", config)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meta must be JSON-serialisable"):
        train(make_model(), batches, config, meta={"model": nn.Linear(1, 1)})
    with pytest.raises(
        TypeError,
        match=r"get_batch\('train', generator\) must return a tuple of tensors.*"
        r"got Tensor",
    ):
        train(make_model(), lambda split, gen: batches(split, gen)[0], config)
    with pytest.raises(
        ValueError,
        match=r"loss_fn must return a scalar float tensor \(shape \(\)\), got "
        r"\(8, 12, 16\)",
    ):
        train(
            make_model(), batches, config, loss_fn=lambda model, batch: model(*batch)[0]
        )
    with pytest.raises(ValueError, match="tuple without a loss at position 1"):
        train(make_model(), lambda split, gen: batches(split, gen)[:1], config)
    with pytest.raises(
        ValueError, match="loss does not depend on any trainable parameter"
    ):
        train(
            make_model(),
            batches,
            config,
            loss_fn=lambda model, batch: torch.tensor(1.0),
        )
    with pytest.raises(ValueError, match="not available"):
        train(make_model(), batches, TrainConfig(max_steps=1, device="cuda:7"))


def test_default_loss_accepts_a_plain_loss() -> None:
    class Regressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(self.w(x), y)

    model = Regressor()
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    assert default_loss(model, (x, y)).dim() == 0
    history = train(
        model, lambda split, gen: (x, y), TrainConfig(max_steps=3, log_every=1, **CPU)
    )
    assert history.tokens_seen == [None, None, None]  # float inputs are not token ids


def test_progress_bar_shows_the_loss(
    batches: LMBatches,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LM_COURSE_PROGRESS", "1")
    train(
        make_model(),
        batches,
        TrainConfig(
            max_steps=4, log_every=2, eval_every=2, eval_batches=1, device="cpu"
        ),
    )
    bar = capsys.readouterr().err
    assert "loss=" in bar and "val=" in bar and "4/4" in bar
    monkeypatch.setenv("LM_COURSE_PROGRESS", "0")
    train(make_model(), batches, TrainConfig(max_steps=2, device="cpu"))
    assert capsys.readouterr().err == ""


def test_bfloat16_autocast_and_no_clipping(batches: LMBatches) -> None:
    config = TrainConfig(
        max_steps=10,
        lr=1e-2,
        precision="bfloat16",
        grad_clip=None,
        eval_batches=1,
        **CPU,
    )
    history = train(make_model(), batches, config)
    assert history.precision == "bfloat16"
    assert math.isfinite(history.val_loss[-1]) and history.grad_norm[-1] > 0
