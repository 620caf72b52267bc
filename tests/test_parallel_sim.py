"""Tensor and pipeline parallelism simulated exactly, their communication counted, and
ZeRO's memory arithmetic."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lm_course.models.blocks import MLP
from lm_course.parallel import (
    Comm,
    bubble_fraction,
    column_parallel_linear,
    gpipe_schedule,
    pipeline_forward,
    row_parallel_linear,
    split_features,
    split_stages,
    tensor_parallel_mlp,
    zero_communication,
    zero_memory,
)
from lm_course.parallel.ddp_demo import demo_run


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_column_and_row_splits_compute_the_same_product(n: int) -> None:
    x, w = _x(3, 5, 16), _x(8, 16)
    comm = Comm()
    gathered = column_parallel_linear(x, w, n, comm)
    assert len(gathered) == n
    for out in gathered:
        torch.testing.assert_close(out, x @ w.T)
    pieces = split_features(x, n, dim=-1)
    for out in row_parallel_linear(pieces, w, comm):
        torch.testing.assert_close(out, x @ w.T)
    # One all-gather and one all-reduce of a (3, 5, 8) float32 output of 480 bytes.
    assert [e.op for e in comm.events] == ["all-gather", "all-reduce"]
    assert comm.events[0].bytes_per_device == pytest.approx((n - 1) / n * 480)
    assert comm.events[1].bytes_per_device == pytest.approx(2 * (n - 1) / n * 480)


def test_the_megatron_mlp_needs_one_all_reduce() -> None:
    torch.manual_seed(0)
    mlp = MLP(16, 64)
    x = _x(2, 7, 16)
    comm = Comm()
    out = tensor_parallel_mlp(x, mlp.fc, mlp.proj, 4, comm)
    torch.testing.assert_close(out, mlp(x))
    assert comm.count("all-reduce") == 1 and len(comm.events) == 1
    with pytest.raises(ValueError, match="cannot split a dimension of size 64"):
        tensor_parallel_mlp(x, mlp.fc, mlp.proj, 3, Comm())
    with pytest.raises(ValueError, match="without biases"):
        tensor_parallel_mlp(x, nn.Linear(16, 64), mlp.proj, 2, Comm())


def test_the_gpipe_schedule_and_its_bubble() -> None:
    grid = gpipe_schedule(3, 4)
    assert grid[0][:6] == ["F0", "F1", "F2", "F3", "", ""]
    assert grid[2][:6] == ["", "", "F0", "F1", "F2", "F3"]
    for row in grid:  # every stage does each forward and backward exactly once
        assert sorted(c for c in row if c) == sorted(
            [f"F{j}" for j in range(4)] + [f"B{j}" for j in range(4)]
        )
        idle = sum(c == "" for c in row) / len(row)
        assert idle == pytest.approx(bubble_fraction(3, 4)) == pytest.approx(2 / 6)
    # Backward needs its stage's forward done and, below the last stage, the next
    # stage's backward of the same micro-batch.
    for s in range(3):
        for j in range(4):
            b = grid[s].index(f"B{j}")
            assert b > grid[s].index(f"F{j}")
            if s < 2:
                assert b > grid[s + 1].index(f"B{j}")
    assert bubble_fraction(4, 1) == pytest.approx(0.75)
    assert bubble_fraction(4, 64) < 0.05


def test_the_pipeline_equals_the_whole_stack_forward_and_backward() -> None:
    torch.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(6)]
    stack = nn.Sequential(*layers)
    x = _x(12, 8)
    expected = stack(x)
    expected.square().sum().backward()
    grads = [p.grad.clone() for p in stack.parameters()]
    stack.zero_grad()

    stages = split_stages(layers, 3)
    assert [len(s) for s in stages] == [2, 2, 2]
    comm = Comm()
    out = pipeline_forward(stages, x, 4, comm)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    for p, g in zip(stack.parameters(), grads):
        torch.testing.assert_close(p.grad, g)
    # 4 micro-batches cross 2 boundaries: 8 sends of (3, 8) float32 activations.
    assert comm.count("send") == 8
    assert comm.total_bytes_per_device() == 8 * 3 * 8 * 4
    assert [len(s) for s in split_stages(layers, 4)] == [2, 1, 1, 2]


def test_zero_memory_arithmetic() -> None:
    p, n = 7.5e9, 64  # the paper's example: 7.5B parameters on 64 devices
    assert zero_memory(p, n, 0)["total"] == pytest.approx(120e9)
    assert zero_memory(p, n, 1)["total"] == pytest.approx(31.4e9, rel=1e-2)
    assert zero_memory(p, n, 2)["total"] == pytest.approx(16.6e9, rel=1e-2)
    assert zero_memory(p, n, 3)["total"] == pytest.approx(1.875e9)
    assert zero_communication(p, 2) == 2 * p and zero_communication(p, 3) == 3 * p
    with pytest.raises(ValueError, match="stage must be an integer"):
        zero_memory(p, n, 4)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
@pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this PyTorch has no distributed"
)
def test_the_ddp_demo_in_two_processes_matches_one(tmp_path: Path) -> None:
    out = tmp_path / "ddp.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LM_COURSE_PROGRESS": "0"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        "-m",
        "lm_course.parallel.ddp_demo",
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(out.read_text())
    torch.set_num_threads(1)
    one = demo_run()
    assert (two["world_size"], one["world_size"]) == (2, 1)
    assert two["steps"] == one["steps"]
    # Equal up to the order of floating-point sums (gradients averaged over ranks).
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-3)
    assert two["val_loss"] == pytest.approx(one["val_loss"], abs=1e-3)
    assert two["weight_sum"] == pytest.approx(one["weight_sum"], rel=1e-4)
