"""The course's command line: ``python -m lm_course COMMAND``.

Commands: ``train``, ``generate``, ``bench``, ``translate`` (chapter 6) and ``speedrun``
(chapter 8's challenge); ``python -m lm_course COMMAND --help`` describes each.

Every error the course raises on purpose (a bad argument, missing or damaged data, a
busy or damaged run folder, a diverged run) is printed as one ``error: ...`` line with
exit code 2; set ``LM_COURSE_DEBUG=1`` to see the traceback instead. Anything else is a
bug and keeps its traceback. Ctrl-C and SIGTERM stop training after saving a checkpoint
(exit codes 130 and 143, as a shell reports them).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

import torch

from . import charlm
from .data import DataIntegrityError, DataUnavailableError
from .presets import PRESETS, get_preset
from .speedrun import add_speedrun_parser
from .training import RunFolderBusy, Terminated, TrainingDiverged
from .training.device import pick_device
from .training.runfolder import check_run_folder
from .translation.command import add_translate_parser

# Errors the course raises on purpose: each one already says what went wrong and what to
# do. (RunFolderError and DamagedCheckpoint are ValueErrors.)
EXPECTED_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    DataIntegrityError,
    DataUnavailableError,
    RunFolderBusy,
    TrainingDiverged,
)
DEBUG_ENV = "LM_COURSE_DEBUG"


def _train(args: argparse.Namespace) -> None:
    from .training import train

    preset = get_preset(args.preset)
    out = check_run_folder(args.out or f"runs/{preset.name}")
    # A --max-steps below the preset's warmup shrinks the warmup to a tenth of the run.
    warmup = preset.train.get("warmup_steps", 0)
    if args.max_steps is not None and args.max_steps < warmup:
        warmup = args.max_steps // 10
    model, tokenizer, batches, config = charlm.build(
        preset,
        max_steps=args.max_steps,
        warmup_steps=warmup,
        device=args.device,
        seed=args.seed,
        compile=True if args.compile else None,
        checkpoint_dir=str(out),
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
    )
    # Under torchrun every process runs this function; only the first reports.
    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        print(
            f"preset {preset.name}: {model.num_params() / 1e6:.2f}M parameters; "
            f"run folder {out}"
        )
    history = train(
        model,
        batches,
        config,
        meta=charlm.run_meta(preset, model),
        files={charlm.TOKENIZER_FILE: tokenizer.save},
    )
    if not main_process:
        return
    if history.steps and history.start_step >= history.steps[-1]:
        print(f"nothing trained; the checkpoints in {out} are unchanged")
        return
    if history.val_loss:
        print(
            f"validation loss {history.val_loss[-1]:.4f} after "
            f"{history.eval_steps[-1]} steps"
        )
    print(f"checkpoint saved in {out}; try: python -m lm_course generate --run {out}")


def _generate(args: argparse.Namespace) -> None:
    from .generation import generate

    device = pick_device(args.device)
    model, tokenizer = charlm.load_run(args.run, device)
    prompt = args.prompt
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    out = generate(
        model,
        ids,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        greedy=args.greedy,
        use_cache=not args.no_cache,
        generator=generator,
    )
    print(tokenizer.decode(out[0].tolist()))


def _bench(args: argparse.Namespace) -> None:
    from .bench import main as bench_main

    bench_main(
        quick=args.quick, as_json=args.json, device=args.device, budget_s=args.budget_s
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the tests and the docs)."""
    main = argparse.ArgumentParser(
        prog="python -m lm_course",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = main.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a character-level GPT on Tiny Shakespeare")
    p.add_argument(
        "--preset",
        default="cpu",
        choices=sorted(PRESETS),
        help="recipe to train (default: cpu)",
    )
    p.add_argument(
        "--out",
        help="run folder for checkpoints (default: runs/PRESET); a run "
        "resumes from the latest checkpoint there, so use a new folder to start over",
    )
    p.add_argument(
        "--max-steps",
        type=_positive_int,
        help="override the preset's step count (a warmup longer than that shrinks "
        "to a tenth of it)",
    )
    p.add_argument(
        "--device", help="auto, cpu, cuda, cuda:1 or mps (default: the preset's)"
    )
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.add_argument("--seed", type=int, help="random seed (default: 1337)")
    p.add_argument(
        "--eval-every", type=int, default=200, help="steps between evaluations"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        help="steps between checkpoints (a run resumes from the latest)",
    )
    p.set_defaults(func=_train)

    g = sub.add_parser("generate", help="sample text from a trained run")
    g.add_argument("--run", required=True, help="run folder written by `train`")
    g.add_argument(
        "--prompt", default="\n", help="text to continue (default: a newline)"
    )
    g.add_argument("--max-new-tokens", type=_positive_int, default=500)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=_positive_int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument(
        "--greedy", action="store_true", help="always pick the likeliest token"
    )
    g.add_argument(
        "--no-cache", action="store_true", help="recompute keys/values every step"
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto")
    g.set_defaults(func=_generate)

    b = sub.add_parser(
        "bench", help="measure speed and quality; prints a table or JSON"
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument(
        "--quick", action="store_true", help="a shorter run with the same keys"
    )
    b.add_argument(
        "--budget-s",
        type=_positive_float,
        help="seconds the default recipe trains for (default: the time the reference "
        "configuration takes)",
    )
    b.add_argument("--device", default="auto")
    b.set_defaults(func=_bench)

    add_translate_parser(sub)
    add_speedrun_parser(sub)
    return main


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _show_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    """Warnings as one ``warning: ...`` line, without the source file and line."""
    print(f"warning: {_one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m lm_course`` and the ``lm-course`` script."""
    args = parser().parse_args(argv)
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            args.func(args)
        except KeyboardInterrupt as stop:
            # The trainer has saved a checkpoint and said where; no traceback.
            signum = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
            raise SystemExit(128 + signum) from None
        except EXPECTED_ERRORS as error:
            if debug:
                raise
            print(f"error: {_one_line(error)}", file=sys.stderr)
            raise SystemExit(2) from None
