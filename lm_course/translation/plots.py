"""Figures for the translation chapter: cross-attention maps with Chinese labels.

Matplotlib's default font has no Chinese characters. :func:`cjk_font` finds an
installed font that has them (WenQuanYi, Noto CJK, Source Han, SimHei, ...); where
there is none (Colab, for instance: ``apt-get install fonts-wqy-microhei`` adds one),
the source axis is labelled with the characters' positions instead, so that a figure
never shows empty boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.axes import Axes
from torch import Tensor

__all__ = ["cjk_font", "plot_cross_attention"]

_CJK_NAMES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
)


_CJK_FILES = ("wqy", "cjk", "sourcehan", "simhei", "msyh", "pingfang")


def cjk_font() -> str | None:
    """The name of an installed font with Chinese characters, or ``None``.

    Matplotlib lists the fonts it found when it built its font cache; a font installed
    later is looked for among the system's font files and added.
    """
    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in _CJK_NAMES if name in installed), None)
    if found is not None:
        return found
    for path in font_manager.findSystemFonts():
        if any(key in path.lower() for key in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue  # an unreadable font file: try the next one
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_NAMES if name in installed), None)


def plot_cross_attention(
    weights: Tensor,
    source: Sequence[str],
    target: Sequence[str],
    ax: Axes | None = None,
    title: str = "",
) -> Axes:
    """Draw one attention map: ``weights`` ``(len(target), len(source))``.

    Rows are target tokens (what the decoder was predicting), columns source tokens
    (what it looked at); darker is more weight, black being the largest weight in the
    map (each row sums to 1).
    """
    if weights.shape != (len(target), len(source)):
        raise ValueError(
            f"weights has shape {tuple(weights.shape)}, expected "
            f"({len(target)}, {len(source)}) = (target tokens, source tokens)"
        )
    ax = ax or plt.gca()
    ax.imshow(weights.float().numpy(), cmap="Greys", vmin=0.0)
    font = cjk_font()
    labels = list(source) if font else [str(i) for i in range(len(source))]
    ax.set_xticks(range(len(source)), labels, fontfamily=font or "sans-serif")
    ax.set_yticks(range(len(target)), list(target))
    ax.tick_params(axis="x", labeltop=True, labelbottom=False, length=0)
    ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
