"""The command line as a reader uses it: train a tiny preset, resume, generate from it.

Then what goes wrong: signals, a busy or damaged run folder, bad data, bad paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lm_course import charlm, training
from lm_course.cli import main
from lm_course.data import DataIntegrityError, DataUnavailableError
from lm_course.presets import get_preset
from lm_course.training import TrainingDiverged, runfolder


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


# --- stopping, locking, seeds ---------------------------------------------------------


def _tiny(out: Path, *more: str) -> list[str]:
    return ["train", "--preset", "tiny", "--out", str(out), *more]


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(
    tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lm_course"]
    command += _tiny(out, "--max-steps", "100000", "--checkpoint-every", "20")
    env = {**os.environ, "LM_COURSE_PROGRESS": "0", "LM_COURSE_DATA": str(shared_data)}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "latest.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    match = re.search(r"SIGTERM: stopped after step (\d+); saved (\S+)\.", stdout)
    assert match, stdout
    assert json.loads((out / "latest.json").read_text())["step"] == int(match[1])
    assert not (out / ".lock.owner").exists()  # the lock was let go


HOLDER = (
    "import sys, time\n"
    "from lm_course.training.runfolder import lock_run_folder\n"
    "with lock_run_folder(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def test_a_busy_run_folder_gives_one_line_naming_the_process(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = _fails(capsys, _tiny(out, "--max-steps", "6"))
        assert f"{out} is in use by process {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "tokenizer.json").exists()  # refused before writing


def test_the_same_seed_gives_the_same_weights(
    tmp_path: Path, shared_data: Path
) -> None:
    env = {"LM_COURSE_DATA": str(shared_data)}
    weights = []
    for name, seed in [("a", "7"), ("b", "7"), ("c", "8")]:
        args = _tiny(tmp_path / name, "--max-steps", "5", "--seed", seed)
        result = _run(*args, "--eval-every", "0", env=env)
        assert result.returncode == 0, result.stderr
        weights.append(
            (tmp_path / name / "step-000005" / "model.safetensors").read_bytes()
        )
    assert weights[0] == weights[1] and weights[0] != weights[2]


def test_charlm_build_is_seeded(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    tiny = get_preset("tiny")
    first = charlm.build(tiny, seed=3)[0].state_dict()
    torch.rand(5)  # the caller's random state does not matter
    second = charlm.build(tiny, seed=3)[0].state_dict()
    other = charlm.build(tiny, seed=4)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


# --- one clear line, not a traceback --------------------------------------------------


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run main(argv), expect exit code 2 and one error line; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "error",
    [
        DataIntegrityError("input.txt has sha256 abc, expected def"),
        DataUnavailableError("tinyshakespeare/input.txt is not available offline"),
    ],
)
def test_data_errors_give_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    def fail() -> str:
        raise error

    monkeypatch.setattr(charlm, "tiny_shakespeare", fail)
    assert str(error) in _fails(capsys, _tiny(tmp_path / "run"))


def test_a_real_bug_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug() -> str:
        raise RuntimeError("a bug in the course")

    monkeypatch.setattr(charlm, "tiny_shakespeare", bug)
    with pytest.raises(RuntimeError, match="a bug in the course"):
        main(_tiny(tmp_path / "run"))
    monkeypatch.setenv("LM_COURSE_DEBUG", "1")  # and expected errors show theirs
    with pytest.raises(FileNotFoundError):
        main(["generate", "--run", str(tmp_path / "nothing")])


def test_an_out_that_is_a_file_or_not_writable_gives_one_line(
    tmp_path: Path,
    shared_data: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert f"run folder {notes} is a file" in _fails(capsys, _tiny(notes))
    assert "lies below the file" in _fails(capsys, _tiny(notes / "run"))

    class NoPermission:
        def __init__(self, path: str) -> None:
            pass

        def acquire(self, timeout: float) -> None:
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runfolder, "FileLock", NoPermission)
    err = _fails(capsys, _tiny(tmp_path / "run", "--max-steps", "6"))
    assert "cannot write in the run folder" in err and "Permission denied" in err


def test_a_diverged_run_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    def diverge(*args: object, **kwargs: object) -> None:
        raise TrainingDiverged(7, "the loss is NaN or infinite", "lr too high")

    monkeypatch.setattr(training, "train", diverge)
    monkeypatch.setattr(charlm, "tiny_shakespeare", lambda: "to be or not to be " * 50)
    assert "training diverged at step 7" in _fails(capsys, _tiny(tmp_path / "run"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    args = _tiny(
        out, "--max-steps", "6", "--checkpoint-every", "3", "--eval-every", "0"
    )
    result = _run(*args, env={"LM_COURSE_DATA": str(shared_data)})
    assert result.returncode == 0, result.stderr
    return out


def _copy(run: Path, tmp_path: Path, keep: str = "step-000006") -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for folder in copy.glob("step-*"):
        if folder.name != keep and keep != "all":
            shutil.rmtree(folder)
    return copy


def _edit_state(run: Path, change) -> Path:  # noqa: ANN001
    state_file = run / "step-000006" / "state.json"
    state = json.loads(state_file.read_text())
    change(state)
    state_file.write_text(json.dumps(state))
    return state_file


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda s: s.pop("meta"), r"has no field 'meta.model_config'"),
        (
            lambda s: s["meta"]["model_config"].update(colour="red"),
            r"unknown GPTConfig field 'colour' in \S+state.json \(field "
            r"'meta.model_config'\)",
        ),
        (lambda s: s["meta"]["model_config"].pop("vocab_size"), r"'vocab_size'"),
        (lambda s: s["meta"].update(tokenizer="../secret.json"), "not a path inside"),
        (lambda s: s.pop("step"), r"state.json has no valid field 'step'"),
    ],
)
def test_damaged_files_name_the_file_the_field_and_what_to_do(
    trained_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage,  # noqa: ANN001
    expected: str,
) -> None:
    run = _copy(trained_run, tmp_path)
    state_file = _edit_state(run, damage)
    err = _fails(capsys, ["generate", "--run", str(run), "--max-new-tokens", "5"])
    assert re.search(expected, err), err
    assert str(state_file) in err


def test_invalid_json_names_the_file(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(trained_run, tmp_path)
    (run / "step-000006" / "state.json").write_text('{"step": 6,')
    err = _fails(capsys, ["generate", "--run", str(run), "--max-new-tokens", "5"])
    assert "step-000006/state.json is not valid JSON" in err and "every" in err


def test_generate_falls_back_past_a_damaged_newest_checkpoint(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(trained_run, tmp_path, keep="all")
    weights = run / "step-000006" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    main(["generate", "--run", str(run), "--max-new-tokens", "5", "--prompt", "AB"])
    captured = capsys.readouterr()
    assert captured.out.startswith("AB")
    assert "warning: skipping the damaged checkpoint" in captured.err
    assert "step-000006" in captured.err and "Traceback" not in captured.err


def test_fewer_steps_than_done_says_nothing_was_trained(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(trained_run, tmp_path, keep="all")
    before = (run / "latest.json").read_text()
    main(_tiny(run, "--max-steps", "5"))
    captured = capsys.readouterr()
    assert "nothing to train" in captured.err and "6 steps" in captured.err
    assert "nothing trained" in captured.out and "checkpoint saved" not in captured.out
    assert (run / "latest.json").read_text() == before
