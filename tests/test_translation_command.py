"""``python -m lm_course translate``: stdin to stdout, empty lines, unknown characters,
cold and warm model cache. Uses the seconds-long ``ch06-translator-tiny`` recipe.

The command is launched as a reader launches it, ``python -m lm_course translate``, in
a fresh process: a cold cache trains the model (saying so on stderr), and the ready
models folder ``LM_COURSE_MODELS``, pointed at that cache, serves it afterwards."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_course.translation.command import add_translate_parser, run_translate
from lm_course.translation.translator import bleu, load_translator, recipe_for

TINY = "ch06-translator-tiny"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """One model cache for the module: the first test to load fills it."""
    return tmp_path_factory.mktemp("cache")


def _env(
    cache: Path, data: Path, progress: bool = False, models: Path | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LM_COURSE")}
    env.update(
        LM_COURSE_CACHE=str(cache),
        LM_COURSE_DATA=str(data),
        LM_COURSE_PROGRESS="1" if progress else "0",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    if models is not None:
        env["LM_COURSE_MODELS"] = str(models)
    return env


def _run(  # noqa: ANN202
    cache: Path,
    data: Path,
    stdin: bytes,
    progress: bool = False,
    models: Path | None = None,
):
    command = ["translate", "--recipe", TINY, "--beam", "2"]
    return subprocess.run(
        [sys.executable, "-m", "lm_course", *command],
        input=stdin,
        capture_output=True,
        env=_env(cache, data, progress, models),
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_cold_then_warm_cache_give_the_same_translations(
    cache: Path, shared_data: Path, tmp_path: Path
) -> None:
    text = "我不会说法语。\n\n你好。\n我不會說法語。\n".encode()
    cold = _run(cache, shared_data, text, progress=True)
    assert cold.returncode == 0, cold.stderr.decode()
    assert f"Training {TINY!r}" in cold.stderr.decode()  # said on stderr, not stdout
    lines = cold.stdout.decode().split("\n")
    assert len(lines) == 5 and lines[-1] == ""  # 4 lines in, 4 out
    assert lines[1] == ""  # the empty line stays empty
    assert lines[0] and lines[2]
    assert lines[0] == lines[3]  # traditional and simplified: one sentence
    warm = _run(cache, shared_data, text, progress=True)
    assert warm.returncode == 0, warm.stderr.decode()
    assert "Training" not in warm.stderr.decode()
    assert warm.stdout == cold.stdout
    # The ready-models folder: the filled cache's models, read only, and an empty
    # writable cache -- nothing is trained, and the translations are the same.
    empty = tmp_path / "empty-cache"
    ready = _run(empty, shared_data, text, progress=True, models=cache / "models")
    assert ready.returncode == 0, ready.stderr.decode()
    assert "Training" not in ready.stderr.decode()
    assert ready.stdout == cold.stdout
    assert not (empty / "models").exists() or not any((empty / "models").glob("ch*"))


def test_unknown_characters_and_bad_bytes_do_not_stop_it(
    cache: Path, shared_data: Path
) -> None:
    text = (
        "龘靐齉😀\n\x00\tabc\n".encode()
        + b"\xff\xfe\xe6\x88\n   \n"
        + "我\r\n".encode()
    )
    result = _run(cache, shared_data, text)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().split("\n")
    assert len(lines) == 6 and lines[-1] == ""
    assert lines[3] == ""  # a line of spaces is an empty sentence


def test_in_process_with_a_pipe_and_a_terminal(
    cache: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _env(cache, shared_data).items():
        if key.startswith("LM_COURSE"):
            monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    add_translate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["translate", "--recipe", TINY, "--beam", "1"])
    assert args.func is run_translate
    for tty in (False, True):
        stdin = io.StringIO("你好。\n\n谢谢。\n")
        stdin.isatty = lambda tty=tty: tty  # type: ignore[method-assign]
        stdout = io.StringIO()
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", stdout)
        run_translate(args)
        lines = stdout.getvalue().split("\n")
        assert len(lines) == 4 and lines[1] == "" and lines[0]
    with pytest.raises(SystemExit):
        parser.parse_args(["translate", "--recipe", "nope"])
    bad = parser.parse_args(["translate", "--recipe", TINY, "--beam", "0"])
    with pytest.raises(ValueError, match="--beam"):
        run_translate(bad)


def test_translator_api(
    cache: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_COURSE_CACHE", str(cache))
    translator = load_translator(TINY, device="cpu")
    out = translator.translate(["你好。", "", "  "], beam_size=3)
    assert len(out) == 3 and out[1] == out[2] == ""
    with pytest.raises(TypeError, match="list"):
        translator.translate("你好。")  # type: ignore[arg-type]
    assert recipe_for("cpu") == "ch06-translator"
    assert recipe_for("cuda") == "ch06-translator-gpu"
    assert recipe_for("cpu", "tiny") == TINY


def test_bleu_uses_every_reference() -> None:
    hyps = ["I can't speak French.", "Hello."]
    one = bleu(hyps, [["I don't speak French."], ["Hi."]])
    two = bleu(hyps, [["I don't speak French.", "I can't speak French."], ["Hi."]])
    assert two.score > one.score
    assert bleu(hyps, [[h] for h in hyps]).score == pytest.approx(100.0)
    score, signature = bleu(hyps, [[h] for h in hyps], signature=True)
    assert (
        "tok:13a" in signature and "case:mixed" in signature and "nrefs:1" in signature
    )
    with pytest.raises(ValueError, match="references"):
        bleu(hyps, [["a"]])
