"""``python -m lm_course.reference RECIPE --seeds N``: record a recipe's reference."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import load_reference
from .record import record_reference


def main(argv: Sequence[str] | None = None) -> int:
    """Record the reference of a recipe and print where it went and what it expects."""
    parser = argparse.ArgumentParser(
        prog="python -m lm_course.reference",
        description="Train a recipe with several seeds and write its reference curve.",
    )
    parser.add_argument("recipe", help="a registered recipe, e.g. tiny-char-gpt")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (3)")
    parser.add_argument("--device", default="cpu", help="where to train (cpu)")
    parser.add_argument("--out", help="JSON file (default: the package's reference)")
    args = parser.parse_args(argv)
    path = record_reference(args.recipe, args.seeds, device=args.device, out=args.out)
    print(f"wrote {path}")
    if args.out is None:
        mean, std = load_reference(args.recipe).expected()
        print(f"expected final validation loss: {mean:.4f} (sd {std:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
