"""The course's recurring figures: loss curves (alone or over a reference) and attention
heat maps, drawn with matplotlib."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes

from .reference import BAND, Reference, history_dict, load_reference


def plot_losses(
    history: Any, *, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Plot training loss per step and evaluation losses from a training history.

    ``history`` is a :class:`lm_course.training.History` or its ``to_dict()``: lists
    under ``steps``/``train_loss`` and, when evaluated, ``eval_steps``/``val_loss``.
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


# (metric, steps key in a History, short label, colour, marker of the reader's line)
_SERIES = (
    ("train_loss", "steps", "training", "C0", ""),
    ("val_loss", "eval_steps", "validation", "C1", "o"),
)


def plot_against_reference(
    history: Any,
    reference: Reference | str,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    width: float = BAND,
) -> Axes:
    """Draw a training run's loss curves over the reference band of the same named run.

    For the training loss (per logged step) and the validation loss (per evaluation),
    wherever the reference has them: its mean over seeds (dashed), the band mean ±
    ``width`` standard deviations (shaded) and the reader's curve (solid), in one colour
    per loss. A bar at the last step marks the expected final validation loss. A curve
    inside its band is normal variation; one far outside points to a bug or a changed
    setting.

    Args:
        history: the reader's :class:`lm_course.training.History` or its ``to_dict()``.
        reference: a :class:`lm_course.reference.Reference` or a recipe name.
        ax: the axes to draw on (a new figure when None).
        title: the title (by default the recipe's name).
        width: the band's half-width in standard deviations.
    """
    ref = load_reference(reference) if isinstance(reference, str) else reference
    record = history_dict(history)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    seeds = len(ref.seeds)
    for metric, steps_key, short, colour, marker in _SERIES:
        curve = ref.curves.get(metric)
        if curve is None:
            continue
        lower, upper = curve.band(width)
        ax.fill_between(
            curve.steps,
            lower,
            upper,
            color=colour,
            alpha=0.2,
            lw=0,
            label=f"reference {short} (mean ± {width:g} sd, {seeds} seeds)",
        )
        ax.plot(curve.steps, curve.mean, "--", color=colour, lw=1)
        values = record.get(metric) or []
        if values:
            steps = record.get(steps_key) or []
            ax.plot(
                steps, values, marker=marker, ms=3, color=colour, label=f"your {short}"
            )
    final = ref.final.get("val_loss")
    if final is not None and "val_loss" in ref.curves:
        ax.errorbar(
            [ref.curves["val_loss"].steps[-1]],
            [final.mean],
            yerr=[width * final.std],
            color="black",
            capsize=4,
            lw=1.2,
            label=f"expected final {final.mean:.3f} ± {width * final.std:.3f}",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{ref.recipe}: your run against the reference")
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
