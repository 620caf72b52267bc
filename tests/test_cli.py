"""The command line as a reader uses it: train a tiny preset, resume it, generate from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_course.cli import main


def _run(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lm_course", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LM_COURSE_PROGRESS": "0", **(env or {})},
    )


def test_train_resume_and_generate(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "run"
    env = {"LM_COURSE_DATA": str(shared_data)}
    first = _run(
        "train",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--max-steps",
        "10",
        "--checkpoint-every",
        "5",
        "--eval-every",
        "5",
        env=env,
    )
    assert first.returncode == 0, first.stderr
    assert "validation loss" in first.stdout
    assert json.loads((out / "latest.json").read_text())["step"] == 10
    # Asking for more steps continues from the checkpoint rather than starting over.
    second = _run(
        "train",
        "--preset",
        "tiny",
        "--out",
        str(out),
        "--max-steps",
        "15",
        "--checkpoint-every",
        "5",
        env=env,
    )
    assert second.returncode == 0, second.stderr
    assert json.loads((out / "latest.json").read_text())["step"] == 15
    sample = _run(
        "generate",
        "--run",
        str(out),
        "--prompt",
        "ROMEO:",
        "--max-new-tokens",
        "40",
        env=env,
    )
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("ROMEO:") and len(sample.stdout) >= 40


def test_bad_input_gives_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--run", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "python -m lm_course train" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--run", "x", "--max-new-tokens", "0"])
    assert "must be a positive integer" in capsys.readouterr().err
