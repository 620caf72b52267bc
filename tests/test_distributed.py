"""Data parallelism: two CPU processes (gloo) must train exactly like one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import BATCH_SIZE, BLOCK_SIZE, CONFIG
from training_helpers import make_model, markov_tokens

from lm_course.training import (
    LMBatches,
    TrainConfig,
    init_distributed,
    load_checkpoint,
    shard_batch,
    train,
    train_batch_generator,
    train_val_split,
)

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_shard_batch_takes_contiguous_slices() -> None:
    x, y = torch.arange(12).reshape(6, 2), torch.arange(6)
    assert shard_batch((x, y), 0, 1) == (x, y)
    x1, y1 = shard_batch((x, y), 1, 3)
    assert torch.equal(x1, x[2:4]) and torch.equal(y1, y[2:4])
    with pytest.raises(
        ValueError,
        match=r"has 6 rows, which 4 processes cannot split evenly.*divisible by the "
        r"world "
        r"size \(4\)",
    ):
        shard_batch((x, y), 0, 4)


def test_without_torchrun_there_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.enabled, info.is_main) == (
        0,
        1,
        False,
        True,
    )
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' must be an integer"):
        init_distributed("cpu")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(out: Path, *more: str) -> None:
    """Run the worker in two CPU processes under torchrun."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "LM_COURSE_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join(
            [str(WORKER.parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(WORKER),
        str(out),
        *more,
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


_NEEDS_DISTRIBUTED = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this PyTorch has no distributed"
)


@pytest.mark.slow
@_NEEDS_DISTRIBUTED
def test_two_processes_agree_on_a_time_budget(tmp_path: Path) -> None:
    """Each rank has its own clock; all follow rank 0's, so they stop together and
    take the same steps (else the copies drift and one rank waits for ever)."""
    _torchrun(tmp_path, "budget")
    reports = [json.loads((tmp_path / f"budget-{r}.json").read_text()) for r in (0, 1)]
    assert len(reports[0]["lr"]) >= 2
    assert reports[0] == reports[1]


@pytest.mark.slow
@_NEEDS_DISTRIBUTED
def test_two_processes_match_one(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    out.mkdir()
    _torchrun(out)

    reports = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert (
        reports[0]["loss"] == reports[1]["loss"]
    )  # logged losses are averaged over ranks
    assert sorted(p.name for p in out.glob("step-*")) == [
        "step-000012"
    ]  # only rank 0 saves

    single = make_model(seed=0, dropout=0.0)
    batches = LMBatches(train_val_split(markov_tokens()), BLOCK_SIZE, BATCH_SIZE)
    # Each rank trained on its own half of the global micro-batch.
    first, _ = batches("train", train_batch_generator(TrainConfig(**CONFIG).seed, 0, 0))
    assert reports[0]["first_batch"] == first[: BATCH_SIZE // 2].tolist()
    assert reports[1]["first_batch"] == first[BATCH_SIZE // 2 :].tolist()
    history = train(single, batches, TrainConfig(**CONFIG))

    parallel = make_model(seed=1, dropout=0.0)
    state = load_checkpoint(out, parallel)
    for name, tensor in single.state_dict().items():
        torch.testing.assert_close(
            parallel.state_dict()[name], tensor, atol=1e-5, rtol=1e-5, msg=name
        )
    assert state["history"]["train_loss"] == pytest.approx(history.train_loss, abs=1e-5)
    assert state["history"]["val_loss"] == pytest.approx(history.val_loss, abs=1e-5)
    assert state["history"]["tokens_seen"][-1] == history.tokens_seen[-1]
