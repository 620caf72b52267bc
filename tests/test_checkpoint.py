"""Checkpoints: safe formats, atomic writes, clear errors, bit-identical resumption."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from training_helpers import make_model, markov_tokens

from lm_course.training import (
    LMBatches,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    load_model_weights,
    make_optimizer,
    save_checkpoint,
    train,
    train_val_split,
)
from lm_course.training import checkpoint as checkpoint_module

CPU = {"device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def batches() -> LMBatches:
    return LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)


def _trained_pair(steps: int = 3) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A model and an AdamW whose moments are non-trivial after a few steps."""
    model = make_model(tie=True)
    optimizer = make_optimizer(model, TrainConfig(max_steps=1), torch.device("cpu"))
    x = torch.randint(0, 16, (4, 6), generator=torch.Generator().manual_seed(0))
    for _ in range(steps):
        model(x, x)[1].backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def _assert_same_optimizer_state(
    a: torch.optim.Optimizer, b: torch.optim.Optimizer
) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for index, values in sa["state"].items():
        for name, tensor in values.items():
            assert torch.equal(tensor, sb["state"][index][name]), (index, name)


def test_round_trip_restores_weights_and_optimizer_exactly(tmp_path: Path) -> None:
    model, optimizer = _trained_pair()
    folder = save_checkpoint(tmp_path, 3, model, optimizer, state={"meta": {"dim": 16}})
    assert folder == tmp_path / "step-000003"
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "checkpoint": "step-000003",
        "step": 3,
    }

    fresh = make_model(seed=1, tie=True)
    fresh_optimizer = make_optimizer(
        fresh, TrainConfig(max_steps=1), torch.device("cpu")
    )
    state = load_checkpoint(
        tmp_path, fresh, fresh_optimizer
    )  # the run folder: its latest
    assert state["step"] == 3 and state["meta"] == {"dim": 16}
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, fresh.state_dict()[name]), name
    assert fresh.head.weight is fresh.embed.weight  # still tied after loading
    _assert_same_optimizer_state(optimizer, fresh_optimizer)

    weights_only = make_model(seed=2, tie=True)
    load_model_weights(folder / "model.safetensors", weights_only)
    assert torch.equal(weights_only.embed.weight, model.embed.weight)


def test_keeps_only_the_newest_checkpoints(tmp_path: Path) -> None:
    model, optimizer = _trained_pair(1)
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model, optimizer, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == [
        "step-000003",
        "step-000004",
    ]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000004"
    save_checkpoint(
        tmp_path, 4, model, optimizer, keep=2
    )  # the same step again: replaced
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000004"
    (
        tmp_path / "latest.json"
    ).unlink()  # without the pointer, the highest complete step wins
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000004"
    assert latest_checkpoint(tmp_path / "nothing-here") is None
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind


def test_failure_mid_write_leaves_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer = _trained_pair(1)
    good = save_checkpoint(tmp_path, 1, model, optimizer)
    before = {p.name: p.read_bytes() for p in good.iterdir()}

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(
        checkpoint_module, "_save_optimizer", disk_full
    )  # after model.safetensors
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path, 2, model, optimizer)
    assert latest_checkpoint(tmp_path) == good
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-000001"]

    monkeypatch.setattr(
        checkpoint_module, "_write_json_atomic", disk_full
    )  # the pointer
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 3, model, None)
    assert json.loads((tmp_path / "latest.json").read_text())["step"] == 1


def test_mismatched_model_gives_a_clear_error(tmp_path: Path) -> None:
    model, optimizer = _trained_pair(1)
    save_checkpoint(tmp_path, 1, model, optimizer)
    wider = make_model(dim=32)
    untouched = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(
        ValueError,
        match=r"does not fit this model: 'embed.weight' has shape \[16, 16\] in the "
        r"checkpoint "
        r"but \[16, 32\]",
    ):
        load_checkpoint(tmp_path, wider)
    assert all(torch.equal(untouched[k], v) for k, v in wider.state_dict().items())
    with pytest.raises(
        ValueError, match="'extra.weight' is in the model but not in the checkpoint"
    ):
        bigger = make_model(tie=True)
        bigger.extra = torch.nn.Linear(2, 2)
        load_model_weights(tmp_path, bigger)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "empty", model)
    with pytest.raises(TypeError, match="checkpoint state must be JSON-serialisable"):
        save_checkpoint(tmp_path, 2, model, state={"when": object()})
    with pytest.raises(
        ValueError, match=r"keep must be an integer >= 1, got 0 \(or None"
    ):
        save_checkpoint(tmp_path, 2, model, keep=0)


def _weights_and_optimizer(
    model: torch.nn.Module, optimizer_state: dict
) -> dict[str, torch.Tensor]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for index, values in optimizer_state["state"].items():
        tensors.update({f"optim.{index}.{k}": v for k, v in values.items()})
    return tensors


def _comparable(history) -> dict:
    """History without the wall-clock fields, which differ from run to run, and
    start_step, which says where the latest call began."""
    data = history.to_dict()
    for key in ("elapsed", "tokens_per_sec", "start_step"):
        data.pop(key)
    return data


class _Interrupt:
    """Wraps get_batch and raises `error` at the start of training step `at_step`."""

    def __init__(
        self, batches: LMBatches, at_step: int, grad_accum: int, error: BaseException
    ):
        self.batches, self.left, self.error = batches, at_step * grad_accum, error

    def __call__(self, split: str, generator: torch.Generator):
        if torch.is_grad_enabled():  # a training batch, not one for evaluation
            if self.left == 0:
                raise self.error
            self.left -= 1
        return self.batches(split, generator)


@pytest.mark.parametrize(
    ("error", "checkpoint_every", "resumes_at"),
    [(KeyboardInterrupt(), 0, 10), (RuntimeError("power cut"), 4, 8)],
    ids=["ctrl-c", "crash"],
)
# bfloat16 autocast is the CPU recipe's precision; resume must be exact in it too.
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(
    tmp_path: Path,
    batches: LMBatches,
    error: BaseException,
    checkpoint_every: int,
    resumes_at: int,
    precision: str,
) -> None:
    config = dict(
        precision=precision,
        max_steps=20,
        lr=1e-2,
        warmup_steps=4,
        grad_accum=2,
        eval_every=5,
        eval_batches=2,
        log_every=3,
        **CPU,
    )
    straight = make_model()
    straight_history = train(
        straight,
        batches,
        TrainConfig(**config, checkpoint_dir=tmp_path / "a"),
        meta={"run": 1},
    )

    run_dir = tmp_path / "b"
    first = make_model()
    resumed_config = TrainConfig(
        **config, checkpoint_dir=run_dir, checkpoint_every=checkpoint_every
    )
    with pytest.raises(type(error)):
        train(first, _Interrupt(batches, 10, 2, error), resumed_config, meta={"run": 1})
    assert latest_checkpoint(run_dir).name == f"step-{resumes_at:06d}"

    second = make_model(seed=99)  # a fresh start: weights come from the checkpoint
    resumed_history = train(second, batches, resumed_config, meta={"run": 1})

    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    fresh_a, fresh_b = make_model(), make_model()
    opt_a = make_optimizer(fresh_a, TrainConfig(max_steps=1), torch.device("cpu"))
    opt_b = make_optimizer(fresh_b, TrainConfig(max_steps=1), torch.device("cpu"))
    load_checkpoint(tmp_path / "a", fresh_a, opt_a)
    state_b = load_checkpoint(run_dir, fresh_b, opt_b)
    _assert_same_optimizer_state(opt_a, opt_b)
    assert state_b["step"] == 20 and state_b["meta"] == {"run": 1}
    assert _comparable(resumed_history) == _comparable(straight_history)


def test_a_stop_just_after_a_save_reports_that_checkpoint(
    tmp_path: Path, batches: LMBatches, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C or SIGTERM between a save and the next step has nothing new to save; it
    still says which checkpoint holds the work (a signal often lands just there)."""
    config = TrainConfig(
        max_steps=20, eval_batches=0, checkpoint_every=4, checkpoint_dir=tmp_path, **CPU
    )
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), _Interrupt(batches, 8, 1, KeyboardInterrupt()), config)
    saved = latest_checkpoint(tmp_path)
    assert saved.name == "step-000008"
    assert f"Ctrl-C: stopped after step 8; saved {saved}." in capsys.readouterr().out


def test_resuming_with_another_model_shape_is_refused(
    tmp_path: Path, batches: LMBatches
) -> None:
    config = TrainConfig(max_steps=2, eval_batches=0, checkpoint_dir=tmp_path, **CPU)
    train(make_model(), batches, config)
    with pytest.raises(ValueError, match="does not fit this model"):
        train(
            make_model(dim=8),
            batches,
            TrainConfig(max_steps=4, eval_batches=0, checkpoint_dir=tmp_path, **CPU),
        )
    # resume=False starts over instead (and its checkpoints replace the old ones).
    history = train(
        make_model(dim=8),
        batches,
        TrainConfig(
            max_steps=2, eval_batches=0, log_every=1, checkpoint_dir=tmp_path, **CPU
        ),
        resume=False,
    )
    assert history.steps == [1, 2]
    assert (
        json.loads((latest_checkpoint(tmp_path) / "state.json").read_text())["step"]
        == 2
    )


def test_a_finished_run_resumes_to_nothing_and_more_steps_continue_it(
    tmp_path: Path, batches: LMBatches, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "eval_batches": 0,
        "log_every": 1,
        "checkpoint_dir": tmp_path,
        "device": "cpu",
    }
    first = train(
        make_model(), batches, TrainConfig(max_steps=3, progress=False, **config)
    )
    with pytest.warns(UserWarning, match="nothing to train"):
        again = train(
            make_model(), batches, TrainConfig(max_steps=3, progress=False, **config)
        )
    assert again.steps == first.steps == [1, 2, 3]
    with pytest.warns(UserWarning, match=r"different settings \(max_steps 3 -> 5\)"):
        longer = train(make_model(), batches, TrainConfig(max_steps=5, **config))
    assert longer.steps == [1, 2, 3, 4, 5]
    assert (
        f"Resuming from {tmp_path / 'step-000003'} (step 3 of 5)"
        in capsys.readouterr().out
    )


def test_ctrl_c_during_the_optimizer_step_waits_for_it_to_finish() -> None:
    from lm_course.training.guards import interrupts_held

    # Python's own Ctrl-C handler, whatever the test process had: a process that
    # ignores SIGINT (SIG_IGN) rightly gets no KeyboardInterrupt, which is how this test
    # once failed in a CI worker ("DID NOT RAISE").
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        finished = False
        with pytest.raises(KeyboardInterrupt), interrupts_held():
            signal.raise_signal(signal.SIGINT)  # this thread, handled at once
            finished = True  # the signal did not cut the block short
        assert finished
        # The usual handler is back.
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
