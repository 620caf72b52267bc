"""Draw the course's explanatory diagrams: the LSTM cell and multi-head attention.

Chapters 2 and 3 show them as ``book/figures/multi_head.png`` and
``book/figures/lstm_cell.png``. They are drawings, not results, so they are kept as
files; this script is their source. Run it from anywhere::

    python book/figures/diagrams.py              # rewrites both PNGs
    python book/figures/diagrams.py --out DIR    # writes them into DIR instead
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
DPI = 200  # about 1600 pixels wide: sharp on a laptop's high-density screen
GATE = "#fde9c9"  # gates and layers
STATE = "#d6e6f7"  # the states that flow through
EDGE = "#333333"


def _box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    color: str = GATE,
    size: float = 11,
) -> None:
    """A rounded box centred at (x, y) with a label."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor=EDGE,
            linewidth=1.2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _op(ax: Axes, x: float, y: float, symbol: str) -> None:
    """A point-wise operation (multiply or add) drawn as a small circle."""
    ax.add_patch(Circle((x, y), 0.17, facecolor="white", edgecolor=EDGE, linewidth=1.2))
    ax.text(x, y - 0.01, symbol, ha="center", va="center", fontsize=13)


def _arrow(
    ax: Axes, points: list[tuple[float, float]], color: str = EDGE, width: float = 1.3
) -> None:
    """A polyline from the first point to the last, with an arrow head at the end."""
    for start, end in zip(points[:-2], points[1:-1]):
        ax.plot(*zip(start, end), color=color, linewidth=width, solid_capstyle="round")
    ax.add_patch(
        FancyArrowPatch(
            points[-2],
            points[-1],
            arrowstyle="-|>",
            mutation_scale=13,
            color=color,
            linewidth=width,
            shrinkA=0,
            shrinkB=0,
        )
    )


def draw_lstm_cell() -> Figure:
    """The LSTM cell: the cell state along the top, four gates below it."""
    fig, ax = plt.subplots(figsize=(8.6, 4.6))
    ax.add_patch(
        FancyBboxPatch(
            (0.6, 0.5),
            7.6,
            3.6,
            boxstyle="round,pad=0.02,rounding_size=0.2",
            facecolor="#f6f6f6",
            edgecolor="#999999",
        )
    )
    top, gates_y, bus_y = 3.6, 1.75, 0.85
    fx, ix, gx, ox = 2.4, 3.65, 4.9, 6.15  # where the four gates sit
    mid = (ix + gx) / 2  # where i_t * g_t joins the cell state
    # The cell state: c_{t-1} -> x f -> + (i * g) -> c_t.
    _arrow(ax, [(0.0, top), (fx - 0.17, top)], width=2.2)
    _op(ax, fx, top, "×")
    _arrow(ax, [(fx + 0.17, top), (mid - 0.17, top)], width=2.2)
    _op(ax, mid, top, "+")
    _arrow(ax, [(mid + 0.17, top), (8.9, top)], width=2.2)
    ax.text(-0.05, top + 0.28, "$c_{t-1}$", fontsize=13)
    ax.text(8.55, top + 0.28, "$c_t$", fontsize=13)
    ax.text(
        5.1,
        top + 0.22,
        "cell state: scaled, then added to",
        fontsize=9,
        color="#555555",
    )
    # The gates, all computed from [h_{t-1}, x_t].
    gates = [
        (fx, "$\\sigma$", "forget $f_t$"),
        (ix, "$\\sigma$", "input $i_t$"),
        (gx, "tanh", "candidate $g_t$"),
        (ox, "$\\sigma$", "output $o_t$"),
    ]
    for x, symbol, name in gates:
        _box(ax, x, gates_y, 1.15, 0.7, f"{symbol}\n{name}", size=9.5)
        ax.plot([x, x], [bus_y, gates_y - 0.35], color=EDGE, linewidth=1.3)
    _arrow(ax, [(fx, gates_y + 0.35), (fx, top - 0.17)])  # f_t scales c_{t-1}
    _op(ax, mid, 2.7, "×")  # i_t * g_t
    _arrow(ax, [(ix, gates_y + 0.35), (ix, 2.7), (mid - 0.17, 2.7)])
    _arrow(ax, [(gx, gates_y + 0.35), (gx, 2.7), (mid + 0.17, 2.7)])
    _arrow(ax, [(mid, 2.87), (mid, top - 0.17)])
    # Output: h_t = o_t * tanh(c_t).
    _box(ax, 7.2, 3.05, 0.8, 0.42, "tanh", size=10)
    _arrow(ax, [(7.2, top), (7.2, 3.27)])
    _op(ax, 7.2, 2.2, "×")
    _arrow(ax, [(7.2, 2.84), (7.2, 2.37)])
    _arrow(ax, [(ox, gates_y + 0.35), (ox, 2.2), (7.03, 2.2)])
    _arrow(ax, [(7.37, 2.2), (8.9, 2.2)], width=2.2)
    ax.text(8.55, 2.38, "$h_t$", fontsize=13)
    # The input bus: h_{t-1} and x_t, concatenated.
    _arrow(ax, [(0.0, bus_y), (ox, bus_y)], width=2.2)
    ax.text(-0.05, bus_y + 0.15, "$h_{t-1}$", fontsize=13)
    _arrow(ax, [(1.4, -0.15), (1.4, bus_y)])
    ax.text(1.5, -0.2, "$x_t$", fontsize=13)
    ax.text(
        4.3,
        bus_y - 0.62,
        "each gate: $W_{x\\cdot}\\,x_t + W_{h\\cdot}\\,h_{t-1} + b_\\cdot$",
        ha="center",
        fontsize=9,
        color="#555555",
    )
    ax.set(xlim=(-0.3, 9.2), ylim=(-0.45, 4.35))
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def draw_multi_head() -> Figure:
    """Multi-head attention: project, split into heads, attend, concatenate, W^O."""
    fig, ax = plt.subplots(figsize=(10, 4.6))
    _box(ax, 0.9, 2.2, 1.4, 0.8, "$X$\n(seq, $d_{model}$)", color=STATE, size=10)
    projections = [("$W^Q$", 3.4), ("$W^K$", 2.2), ("$W^V$", 1.0)]
    for label, y in projections:
        _arrow(ax, [(1.6, 2.2), (2.1, 2.2), (2.1, y), (2.55, y)])
        _box(ax, 3.0, y, 0.9, 0.55, label, size=11)
    heads = [("head 1", 3.7), ("head 2", 2.5), ("head $h$", 0.7)]
    for name, y in heads:
        for _, yy in projections:
            ax.plot([3.45, 4.45], [yy, y], color="#aaaaaa", linewidth=0.8)
        _box(
            ax,
            5.6,
            y,
            2.3,
            0.8,
            f"{name}\nsoftmax$(QK^T/\\sqrt{{d_{{head}}}})\\,V$",
            size=9,
        )
        _arrow(ax, [(6.75, y), (7.45, 2.2)])
    ax.text(5.6, 1.5, "⋮", ha="center", va="center", fontsize=14, color="#555555")
    ax.text(
        5.6,
        -0.1,
        "each head: its own slice of $W^Q, W^K, W^V$, $d_{head}$ wide",
        ha="center",
        fontsize=9,
        color="#555555",
    )
    _box(ax, 8.1, 2.2, 1.2, 0.8, "Concat\n($h \\cdot d_{head}$)", size=9.5)
    _arrow(ax, [(8.7, 2.2), (9.05, 2.2)])
    _box(ax, 9.5, 2.2, 0.8, 0.6, "$W^O$", size=11)
    _arrow(ax, [(9.9, 2.2), (10.3, 2.2)])
    _box(ax, 11.05, 2.2, 1.4, 0.8, "output\n(seq, $d_{model}$)", color=STATE, size=10)
    ax.set(xlim=(0.1, 11.85), ylim=(-0.4, 4.25))
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "lstm_cell.png": draw_lstm_cell,
    "multi_head.png": draw_multi_head,
}


def main(argv: list[str] | None = None) -> int:
    """Draw every diagram into ``--out`` (default: this folder); return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in DIAGRAMS.items():
        fig = draw()
        # Fixed metadata, so that redrawing an unchanged diagram gives the same bytes.
        fig.savefig(
            args.out / name,
            dpi=DPI,
            bbox_inches="tight",
            facecolor="white",
            metadata={"Software": None},
        )
        plt.close(fig)
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
