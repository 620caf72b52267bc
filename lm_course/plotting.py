"""The course's two recurring figures: loss curves and attention heat maps (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes


def plot_losses(
    history: Any, *, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Plot training loss per step and evaluation losses from a training history.

    ``history`` is a :class:`lm_course.training.History` or its ``to_dict()``: lists under
    ``steps``/``train_loss`` and, when evaluated, ``eval_steps``/``val_loss``.
    """
    record = history if isinstance(history, Mapping) else history.to_dict()
    if ax is None:
        _, ax = plt.subplots()
    if record.get("steps"):
        ax.plot(
            record["steps"],
            record["train_loss"],
            lw=0.8,
            alpha=0.6,
            label="train (batch)",
        )
    if record.get("eval_steps"):
        ax.plot(
            record["eval_steps"], record["val_loss"], "o-", ms=3, label="validation"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_attention(
    weights: torch.Tensor,
    queries: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
) -> Axes:
    """Draw a heat map of attention weights ``(q_len, k_len)``: rows attend to columns.

    Labels name the query (rows) and key (columns) tokens. Small maps are annotated with
    their values unless ``annotate=False``.
    """
    if weights.dim() != 2:
        raise ValueError(
            f"weights must be 2-D (q_len, k_len), got shape {tuple(weights.shape)}; "
            "pick one batch element and head first, e.g. weights[0, 0]"
        )
    w = weights.detach().float().cpu()
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * w.shape[1] + 2, 0.5 * w.shape[0] + 1.2))
    image = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(w.max())))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if keys is not None:
        ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right")
    if queries is not None:
        ax.set_yticks(range(len(queries)), queries)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate is None:
        annotate = w.numel() <= 100
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{w[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if w[i, j] < 0.6 * w.max() else "black",
                )
    if title:
        ax.set_title(title)
    return ax
