"""Work that must never be lost.

Divergence, two runs on one folder, damaged checkpoints, leftovers from a crash, and
files written only after every check has passed."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from training_helpers import make_model, markov_tokens

from lm_course.training import (
    DamagedCheckpoint,
    LMBatches,
    NonFiniteCheckpoint,
    RunFolderBusy,
    RunFolderError,
    TrainConfig,
    TrainingDiverged,
    default_loss,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    train,
    train_val_split,
)
from lm_course.training import run as run_module
from lm_course.training.guards import FiniteGuard
from lm_course.training.runfolder import lock_run_folder

CPU = {"device": "cpu", "progress": False, "eval_batches": 0, "log_every": 1}


@pytest.fixture(scope="module")
def batches() -> LMBatches:
    return LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)


def _nan_at(step: int):
    """A loss_fn whose loss is NaN from optimizer step ``step`` (1-based) on."""
    calls = {"n": 0}

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]):
        loss = default_loss(model, batch)
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] >= step:
                return loss * math.nan
        return loss

    return loss_fn


def _steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in run_dir.glob("step-*"))


def _finite(folder: Path) -> bool:
    model = make_model()
    load_checkpoint(folder, model)
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values())


# --- divergence -----------------------------------------------------------------------


def test_a_nan_loss_stops_the_run_and_keeps_the_good_checkpoints(
    tmp_path: Path, batches: LMBatches
) -> None:
    model = make_model()
    config = TrainConfig(
        max_steps=20, checkpoint_dir=tmp_path, checkpoint_every=2, **CPU
    )
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: the loss") as info:
        train(model, batches, config, loss_fn=_nan_at(5))
    assert info.value.step == 5
    assert "learning rate too high" in str(info.value) and "lr=0.001" in str(info.value)
    assert "precision" not in str(info.value) and "clipping" not in str(info.value)
    assert _steps(tmp_path) == [2, 4]  # keep_checkpoints=2 pruned nothing good
    assert latest_checkpoint(tmp_path).name == "step-000004"
    assert all(_finite(tmp_path / f"step-00000{s}") for s in (2, 4))
    # On the CPU the check comes before the update: the weights are those of step 4.
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # The lock was released: the same folder trains again (and resumes from step 4).
    history = train(make_model(), batches, TrainConfig(**{**config.__dict__}))
    assert history.start_step == 4 and history.steps[-1] == 20


def test_bfloat16_names_precision_as_a_cause(batches: LMBatches) -> None:
    config = TrainConfig(max_steps=5, precision="bfloat16", **CPU)
    with pytest.raises(TrainingDiverged, match=r"step 2: .*precision='float32'"):
        train(make_model(), batches, config, loss_fn=_nan_at(2))


class _DeviceGuard(FiniteGuard):
    """The guard as it works on a GPU: it records on the device and reads later."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.immediate = False


def test_on_a_gpu_the_check_waits_for_a_log_or_a_save_but_nan_is_never_saved(
    tmp_path: Path, batches: LMBatches, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "FiniteGuard", _DeviceGuard)
    config = TrainConfig(
        max_steps=20,
        checkpoint_dir=tmp_path,
        checkpoint_every=3,
        keep_checkpoints=1,
        **{**CPU, "log_every": 10},
    )
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5:"):
        train(make_model(), batches, config, loss_fn=_nan_at(5))
    # Step 6 was due for a save; the check before it found step 5 and saved nothing.
    assert _steps(tmp_path) == [3] and _finite(tmp_path / "step-000003")


def test_the_guard_names_the_first_bad_step_when_it_reads_late() -> None:
    from lm_course.training import DistInfo

    guard = FiniteGuard(torch.device("cpu"), DistInfo(), "high lr")
    guard.immediate = False
    one, nan = torch.tensor(1.0), torch.tensor(math.nan)
    guard.observe(1, one, one)
    guard.check()  # nothing wrong yet
    guard.observe(2, one, nan)
    guard.observe(3, nan, nan)
    with pytest.raises(TrainingDiverged, match="at step 2:"):
        guard.check()
    with pytest.raises(TrainingDiverged, match="at step 2:"):
        guard.logged(4, math.nan)  # the first bad step, not the one logged
    with pytest.raises(TrainingDiverged, match="at step 7: the loss"):
        FiniteGuard(torch.device("cpu"), DistInfo(), "high lr").logged(7, math.inf)


def test_save_checkpoint_refuses_non_finite_weights(tmp_path: Path) -> None:
    model = make_model()
    good = save_checkpoint(tmp_path, 1, model, keep=1)
    with torch.no_grad():
        model.head.weight[0, 0] = math.inf
    with pytest.raises(
        NonFiniteCheckpoint, match=r"model holds NaN or infinite .*head"
    ):
        save_checkpoint(tmp_path, 2, model, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", good.name]


# --- one run per folder ---------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from lm_course.training.runfolder import lock_run_folder
    with lock_run_folder(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_a_second_run_on_a_locked_folder_is_refused(
    tmp_path: Path, batches: LMBatches
) -> None:
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = TrainConfig(max_steps=2, checkpoint_dir=run_dir, **CPU)
        with pytest.raises(RunFolderBusy) as info:
            train(make_model(), batches, config)
        message = str(info.value)
        assert str(run_dir) in message and f"process {holder.pid}" in message
        assert not list(run_dir.glob("step-*"))  # the refused run wrote nothing
    finally:
        holder.kill()  # a crash: the operating system releases the lock
        holder.wait()
    history = train(make_model(), batches, config)
    assert history.steps == [1, 2] and _steps(run_dir) == [2]
    with lock_run_folder(run_dir):  # released when train returned
        pass


def test_a_run_folder_that_is_a_file_is_refused(tmp_path: Path, batches) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    for folder, where in [(file, "is a file"), (file / "run", "lies below the file")]:
        config = TrainConfig(max_steps=1, checkpoint_dir=folder, **CPU)
        with pytest.raises(RunFolderError, match=where):
            train(make_model(), batches, config)
    assert file.read_text() == "mine"


# --- damaged checkpoints and leftovers ------------------------------------------------


def _three_checkpoints(run_dir: Path, batches: LMBatches) -> TrainConfig:
    config = TrainConfig(
        max_steps=6,
        checkpoint_dir=run_dir,
        checkpoint_every=2,
        keep_checkpoints=3,
        **CPU,
    )
    train(make_model(), batches, config)
    assert _steps(run_dir) == [2, 4, 6]
    return config


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncate", "model.safetensors cannot be read"),
        ("bad-json", "state.json is not valid JSON"),
        ("no-step", "no valid field 'step'"),
    ],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path: Path, batches: LMBatches, damage: str, reason: str
) -> None:
    config = _three_checkpoints(tmp_path, batches)
    newest = tmp_path / "step-000006"
    if damage == "truncate":
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "bad-json":
        (newest / "state.json").write_text('{"step": 6, "format"')
    else:
        state = json.loads((newest / "state.json").read_text())
        del state["step"]
        (newest / "state.json").write_text(json.dumps(state))
    with pytest.warns(UserWarning, match=f"damaged checkpoint {newest}.*{reason}"):
        assert latest_checkpoint(tmp_path) == tmp_path / "step-000004"
    with pytest.warns(UserWarning, match="damaged checkpoint"):
        history = train(make_model(), batches, TrainConfig(**{**config.__dict__}))
    assert history.start_step == 4 and history.steps[-1] == 6
    assert latest_checkpoint(tmp_path) == newest  # rewritten, intact
    with pytest.raises(DamagedCheckpoint, match="step-000002.*state.json"):
        (tmp_path / "step-000002" / "state.json").write_text("[]")
        load_checkpoint(tmp_path / "step-000002", make_model())


def test_when_every_checkpoint_is_damaged_nothing_starts_over_on_top(
    tmp_path: Path, batches: LMBatches
) -> None:
    config = _three_checkpoints(tmp_path, batches)
    for step in (2, 4, 6):
        (tmp_path / f"step-00000{step}" / "state.json").write_text("{")
    with pytest.warns(UserWarning), pytest.raises(DamagedCheckpoint, match="every"):
        train(make_model(), batches, config)


def test_a_damaged_newer_checkpoint_does_not_push_out_the_good_ones(
    tmp_path: Path, batches: LMBatches
) -> None:
    _three_checkpoints(tmp_path, batches)
    (tmp_path / "step-000006" / "state.json").write_text("{")
    config = TrainConfig(
        max_steps=5, checkpoint_dir=tmp_path, checkpoint_every=1, keep_checkpoints=1
    )
    with pytest.warns(UserWarning, match="damaged"):
        train(make_model(), batches, TrainConfig(**{**config.__dict__, **CPU}))
    # Step 5 was saved; the damaged step 6 did not count against it.
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000005"
    assert 5 in _steps(tmp_path) and 4 not in _steps(tmp_path)


def test_leftovers_of_a_crash_are_cleaned_on_the_next_start(
    tmp_path: Path, batches: LMBatches
) -> None:
    (tmp_path / ".tmp-step-000002-x1").mkdir(parents=True)
    (tmp_path / ".tmp-step-000002-x1" / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".old-step-000001-x2" / "step-000001").mkdir(parents=True)
    (tmp_path / ".tmp-latest.json-x3").write_text("{")
    train(
        make_model(), batches, TrainConfig(max_steps=1, checkpoint_dir=tmp_path, **CPU)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".lock",
        "latest.json",
        "step-000001",
    ]


# --- pointers and files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["../elsewhere", "/tmp/step-000001", "a/../../b"])
def test_latest_json_must_point_inside_the_run_folder(
    tmp_path: Path, batches: LMBatches, name: str
) -> None:
    config = TrainConfig(max_steps=1, checkpoint_dir=tmp_path / "run", **CPU)
    train(make_model(), batches, config)
    (tmp_path / "run" / "latest.json").write_text(json.dumps({"checkpoint": name}))
    with pytest.raises(RunFolderError, match="latest.json names .*not a path inside"):
        latest_checkpoint(tmp_path / "run")
    with pytest.raises(RunFolderError, match="not a path inside"):
        train(make_model(), batches, TrainConfig(**{**config.__dict__, "max_steps": 2}))


def _writer(text: str):
    def write(path: Path) -> None:
        path.write_text(text)

    return write


def test_run_files_are_written_only_after_every_check(
    tmp_path: Path, batches: LMBatches
) -> None:
    config = TrainConfig(max_steps=2, checkpoint_dir=tmp_path, **CPU)
    train(make_model(), batches, config, files={"tokenizer.json": _writer("A")})
    assert (tmp_path / "tokenizer.json").read_text() == "A"
    more = TrainConfig(**{**config.__dict__, "max_steps": 4})
    # A model that does not fit the checkpoint: refused before the tokenizer is touched.
    with pytest.raises(ValueError, match="does not fit this model"):
        train(make_model(dim=8), batches, more, files={"tokenizer.json": _writer("B")})
    assert (tmp_path / "tokenizer.json").read_text() == "A"
    # The same model with another tokenizer: refused, the checkpoints belong to "A".
    with (
        pytest.warns(UserWarning, match="different settings"),
        pytest.raises(RunFolderError, match="tokenizer.json differs"),
    ):
        train(make_model(), batches, more, files={"tokenizer.json": _writer("B")})
    assert (tmp_path / "tokenizer.json").read_text() == "A"
    assert _steps(tmp_path) == [2]
    # Starting over (resume=False) replaces it.
    train(
        make_model(),
        batches,
        more,
        files={"tokenizer.json": _writer("B")},
        resume=False,
    )
    assert (tmp_path / "tokenizer.json").read_text() == "B"
    assert not list(tmp_path.glob(".tmp-*"))


def test_resuming_below_the_steps_done_says_so_and_changes_nothing(
    tmp_path: Path, batches: LMBatches
) -> None:
    config = TrainConfig(max_steps=4, checkpoint_dir=tmp_path, **CPU)
    train(make_model(), batches, config)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.warns(
        UserWarning, match=r"nothing to train: .* 4 steps, and max_steps=2"
    ):
        history = train(
            make_model(), batches, TrainConfig(**{**config.__dict__, "max_steps": 2})
        )
    assert history.start_step == 4 and history.steps[-1] == 4
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p.name != ".lock"} == {
        p: t for p, t in before.items() if p.name != ".lock"
    }


def test_sigterm_saves_like_ctrl_c(tmp_path: Path, batches: LMBatches) -> None:
    """SIGTERM inside train: a checkpoint of the last finished step, then Terminated."""
    from lm_course.training import Terminated

    calls = {"n": 0}

    def get_batch(split: str, generator: torch.Generator):
        calls["n"] += 1
        if calls["n"] == 4:
            signal.raise_signal(signal.SIGTERM)  # this thread, at once
        return batches(split, generator)

    before = signal.getsignal(signal.SIGTERM)
    config = TrainConfig(max_steps=50, checkpoint_dir=tmp_path, **CPU)
    with pytest.raises(Terminated):
        train(make_model(), get_batch, config)
    assert signal.getsignal(signal.SIGTERM) is before
    assert latest_checkpoint(tmp_path).name == "step-000003"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_a_nan_is_caught_by_the_next_log_and_never_saved(
    tmp_path: Path, batches: LMBatches
) -> None:
    config = TrainConfig(
        max_steps=20,
        checkpoint_dir=tmp_path,
        checkpoint_every=4,
        **{**CPU, "device": "cuda", "log_every": 3},
    )
    with pytest.raises(TrainingDiverged, match="diverged at step 5:"):
        train(make_model(), batches, config, loss_fn=_nan_at(5))
    assert _steps(tmp_path) == [4] and _finite(tmp_path / "step-000004")
