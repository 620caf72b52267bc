"""Draw the course's chapter map (book/figures/chapter_map.png) for the preface.

A chapter counts as available when the book lists it: ``_toc.yml`` names a notebook
``notebooks/NN_*`` with its number. The others are drawn as "coming" (a notebook still
being written is not in the book yet). The PNG records which chapters were available in
a text chunk (``Chapters-available``), so a test can tell when the picture is out of
date.

Run it from anywhere::

    python book/figures/chapter_map.py          # rewrites book/figures/chapter_map.png
    python book/figures/chapter_map.py --out x.png
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path(__file__).resolve().with_suffix(".png")
DEFAULT_TOC = REPO / "_toc.yml"
METADATA_KEY = "Chapters-available"


@dataclass(frozen=True)
class Chapter:
    """One box of the map: number, title, a short summary, articles, position."""

    number: int
    title: str
    summary: str
    articles: str
    x: float
    y: float


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        1,
        "Background",
        "what a language model\npredicts, and how well",
        "001, 003, 004",
        0,
        1,
    ),
    Chapter(
        2,
        "Attention",
        "softmax$(QK^T/\\sqrt{d})V$\nand the articles' errors",
        "000, 001",
        1,
        1.6,
    ),
    Chapter(
        3,
        "The LSTM baseline",
        "the articles' LSTM model,\nfixed and trained",
        "000",
        1,
        0.4,
    ),
    Chapter(
        4,
        "The Transformer",
        "built block by block,\ntrained and sampled",
        "001, 002, 003, 004",
        2,
        1,
    ),
    Chapter(
        5,
        "Pretraining and\nfine-tuning",
        "next-token pretraining,\nthen a small task",
        "001, 004",
        3,
        1.6,
    ),
    Chapter(
        6,
        "Applications",
        "translation, summaries,\nquestion answering",
        "000, 003",
        4,
        1.6,
    ),
    Chapter(
        7,
        "Efficient attention\nand long context",
        "cost, sparse patterns,\npositions, KV cache",
        "000, 002, 004",
        3,
        0.4,
    ),
    Chapter(
        8,
        "Efficiency at scale",
        "quantization, mixed\nprecision, parallelism",
        "003, 004",
        4,
        0.4,
    ),
)

# Prerequisites: an arrow from a chapter to one that builds on it.
EDGES: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 4),
    (4, 5),
    (5, 6),
    (4, 7),
    (7, 8),
)

BOX_W, BOX_H = 0.9, 0.86
AVAILABLE_FILL, AVAILABLE_EDGE = "#dbe9f6", "#1f5f99"
COMING_FILL, COMING_EDGE = "#f4f4f4", "#9a9a9a"


def toc_files(toc: Path) -> list[str]:
    """Return every ``file:`` entry of a Jupyter Book ``_toc.yml``, in order."""
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text(encoding="utf-8")))
    return files


def available_chapters(toc: Path = DEFAULT_TOC) -> list[int]:
    """Return the numbers of the chapters whose ``notebooks/NN_*`` the toc lists."""
    listed = set()
    for file in toc_files(toc):
        match = re.fullmatch(r"notebooks/(\d\d)_\w+(\.ipynb)?", file)
        if match:
            listed.add(int(match.group(1)))
    return [c.number for c in CHAPTERS if c.number in listed]


def draw(available: list[int], out: Path) -> Path:
    """Draw the map with the chapters in ``available`` highlighted, into ``out``."""
    by_number = {c.number: c for c in CHAPTERS}
    fig, ax = plt.subplots(figsize=(11, 5.4), dpi=150)
    ax.set_xlim(-0.5, 4.5)
    ax.set_ylim(-0.15, 2.15)
    ax.set_aspect("auto")
    ax.axis("off")

    for src, dst in EDGES:
        a, b = by_number[src], by_number[dst]
        arrow = FancyArrowPatch(
            (a.x + BOX_W / 2, a.y),
            (b.x - BOX_W / 2, b.y),
            arrowstyle="-|>",
            mutation_scale=14,
            color="#555555",
            lw=1.2,
            shrinkA=2,
            shrinkB=2,
            connectionstyle="arc3,rad=0",
        )
        ax.add_patch(arrow)

    for c in CHAPTERS:
        is_available = c.number in available
        box = FancyBboxPatch(
            (c.x - BOX_W / 2, c.y - BOX_H / 2),
            BOX_W,
            BOX_H,
            boxstyle="round,pad=0.0,rounding_size=0.06",
            facecolor=AVAILABLE_FILL if is_available else COMING_FILL,
            edgecolor=AVAILABLE_EDGE if is_available else COMING_EDGE,
            linewidth=1.8 if is_available else 1.2,
            linestyle="-" if is_available else (0, (4, 3)),
        )
        ax.add_patch(box)
        text_color = "#111111" if is_available else "#6b6b6b"
        status = "available" if is_available else "coming"
        ax.text(
            c.x,
            c.y + 0.33,
            f"Chapter {c.number} \u00b7 {status}",
            ha="center",
            va="center",
            fontsize=7.5,
            color=AVAILABLE_EDGE if is_available else COMING_EDGE,
        )
        ax.text(
            c.x,
            c.y + 0.12,
            c.title,
            ha="center",
            va="center",
            fontsize=9.5,
            fontweight="bold",
            color=text_color,
            linespacing=1.1,
        )
        ax.text(
            c.x,
            c.y - 0.17,
            c.summary,
            ha="center",
            va="center",
            fontsize=7.5,
            color=text_color,
            linespacing=1.15,
        )
        ax.text(
            c.x,
            c.y - 0.36,
            f"articles {c.articles}",
            ha="center",
            va="center",
            fontsize=7,
            style="italic",
            color=text_color,
        )

    ax.set_title(
        "The course's chapters: arrows point from a chapter to those that build on it",
        fontsize=11,
        color="#333333",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(
        out,
        format="png",
        bbox_inches="tight",
        facecolor="white",
        metadata={METADATA_KEY: ",".join(str(n) for n in available)},
    )
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: draw the map for the chapters the book lists."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="PNG file to write"
    )
    parser.add_argument(
        "--toc",
        type=Path,
        default=DEFAULT_TOC,
        help="the book's _toc.yml; the chapters it lists are drawn as available",
    )
    args = parser.parse_args(argv)
    out = draw(available_chapters(args.toc), args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
