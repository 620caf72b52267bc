"""``python -m lm_course translate``: Chinese lines on standard input, English out.

::

    $ echo 我不会说法语。 | python -m lm_course translate
    I can't speak French.

One translation per input line, in order; an empty input line gives an empty output
line. Input may be simplified or traditional Chinese; characters the model never saw
become ``<unk>`` (bytes that are not UTF-8 become U+FFFD first), so no input stops it.
The model is the chapter's, loaded from the model cache; when the cache is cold it is
trained first, with a progress bar on standard error. Typed at a terminal, each line is
translated as soon as it is entered; from a pipe, lines are translated in batches.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .translator import Translator

__all__ = ["add_translate_parser", "run_translate", "translate_lines"]

RECIPES = ("ch06-translator", "ch06-translator-gpu", "ch06-translator-tiny")
PIPE_BATCH = 64  # lines translated together when reading from a pipe


def add_translate_parser(
    subparsers: argparse._SubParsersAction,
) -> argparse.ArgumentParser:
    """Add the ``translate`` command to the command line's ``subparsers``."""
    p = subparsers.add_parser(
        "translate",
        help="translate Chinese lines from standard input into English",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--beam",
        type=int,
        default=4,
        help="beam size; 1 is greedy decoding (default: 4)",
    )
    p.add_argument(
        "--recipe",
        choices=RECIPES,
        help="which trained model (default: the chapter's model for the device)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run_translate)
    return p


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def translate_lines(
    translator: Translator, lines: Iterable[str], out: TextIO, beam: int, batch: int
) -> int:
    """Write one translation per line of ``lines`` to ``out``; returns the count."""
    count = 0
    for chunk in _batches(lines, batch):
        for english in translator.translate(chunk, beam_size=beam):
            out.write(english + "\n")
            count += 1
        out.flush()
    return count


def run_translate(args: argparse.Namespace) -> None:
    """The ``translate`` command: load (or train) the model, then translate stdin."""
    from ..checks import check_int
    from .translator import load_translator

    beam = check_int("--beam", args.beam, minimum=1, maximum=32)
    translator = load_translator(args.recipe, args.device)
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(encoding="utf-8", errors="replace")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    batch = 1 if stdin.isatty() else PIPE_BATCH
    translate_lines(translator, stdin, sys.stdout, beam, batch)
