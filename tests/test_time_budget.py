"""A wall-clock budget: the run stops when the time is up, and its learning rate follows
the clock. A test clock that advances one second per training batch makes it exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_helpers import make_model, markov_tokens

from lm_course.training import (
    LMBatches,
    TrainConfig,
    load_checkpoint,
    lr_at_step,
    lr_at_time,
    train,
    train_val_split,
)
from lm_course.training import run as run_module

CPU = {"device": "cpu", "progress": False, "eval_batches": 0, "log_every": 1}
SETTINGS = {"lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 3}


class OneSecondPerBatch:
    """get_batch that moves the run's clock one second on for every training batch."""

    def __init__(self, batches: LMBatches, stop_at: int | None = None) -> None:
        self.batches, self.now, self.stop_at = batches, 1000.0, stop_at

    def clock(self) -> float:
        return self.now

    def __call__(self, split: str, generator: torch.Generator):
        if torch.is_grad_enabled():
            if self.stop_at is not None and self.now - 1000.0 == self.stop_at:
                raise KeyboardInterrupt
            self.now += 1.0
        return self.batches(split, generator)


@pytest.fixture(scope="module")
def batches() -> LMBatches:
    return LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)


def test_time_schedule_matches_the_step_schedule_when_steps_take_equal_time() -> None:
    for step in range(12):
        by_time = lr_at_time(
            step,
            float(step),
            time_budget_s=10.0,
            lr=1.0,
            min_lr=0.1,
            warmup_steps=3,
            warmup_end_s=3.0,
        )
        by_step = lr_at_step(step, max_steps=10, lr=1.0, min_lr=0.1, warmup_steps=3)
        assert by_time == pytest.approx(by_step)


def test_a_budgeted_run_stops_on_time_and_ends_its_schedule_there(
    batches: LMBatches, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed = OneSecondPerBatch(batches)
    monkeypatch.setattr(run_module, "clock", timed.clock)
    model = make_model()
    history = train(model, timed, TrainConfig(time_budget_s=10.0, **SETTINGS, **CPU))
    assert history.steps == list(range(1, 11))  # ten one-second steps fill ten seconds
    assert history.elapsed[-1] == 10.0
    # Each step's rate is the step schedule's for a 10-step run: the clock says where
    # in the schedule the run is, and here each step takes the same time.
    stepped = TrainConfig(max_steps=10, **SETTINGS, **CPU)
    assert history.lr == pytest.approx([stepped.lr_at(s) for s in range(10)])
    same = make_model()
    train(same, batches, stepped)
    for name, tensor in same.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name


def test_max_steps_caps_a_budgeted_run(
    batches: LMBatches, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed = OneSecondPerBatch(batches)
    monkeypatch.setattr(run_module, "clock", timed.clock)
    config = TrainConfig(max_steps=4, time_budget_s=10.0, **SETTINGS, **CPU)
    history = train(make_model(), timed, config)
    assert history.steps[-1] == 4
    assert history.lr[-1] > config.final_lr  # stopped early in the schedule


def test_a_resumed_budgeted_run_keeps_the_time_already_spent(
    tmp_path: Path, batches: LMBatches, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(
        time_budget_s=10.0, checkpoint_dir=tmp_path / "b", **SETTINGS, **CPU
    )
    interrupted = OneSecondPerBatch(batches, stop_at=6)
    monkeypatch.setattr(run_module, "clock", interrupted.clock)
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), interrupted, config)
    resumed = OneSecondPerBatch(batches)
    monkeypatch.setattr(run_module, "clock", resumed.clock)
    history = train(make_model(seed=5), resumed, config)
    assert history.start_step == 6 and history.steps[-1] == 10
    assert resumed.now == 1004.0  # four more seconds: the first six were kept

    straight = OneSecondPerBatch(batches)
    monkeypatch.setattr(run_module, "clock", straight.clock)
    whole = make_model()
    train(whole, straight, TrainConfig(**{**config.__dict__, "checkpoint_dir": None}))
    parted = make_model(seed=3)
    load_checkpoint(tmp_path / "b", parted)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, parted.state_dict()[name]), name
    # The budget is used up: another call has nothing to train.
    with pytest.warns(UserWarning, match=r"nothing to train: .*time_budget_s=10.0"):
        train(make_model(), resumed, config)


def test_a_real_clock_budget_stops_close_to_it(batches: LMBatches) -> None:
    # A whole second: on a loaded CI machine one step of this tiny model has stalled
    # for 0.16 s, and the last step's rate is the one set when that step began.
    history = train(make_model(), batches, TrainConfig(time_budget_s=1.0, **CPU))
    assert 1.0 <= history.elapsed[-1] < 3.0
    assert history.lr[-1] < 0.5 * history.lr[0]  # most of the way down to lr / 10
