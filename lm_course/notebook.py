"""Set-up shared by every notebook: determinism, device choice, sharp PNG figures, and
the chapter's measured run time."""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from .training import device as _device


def setup(seed: int = 0, *, threads: int | None = None) -> torch.device:
    """Seed every generator, fix the thread count, make figures PNG; return the device.

    The device is the one the trainer picks for ``device="auto"`` (CUDA, then Apple's
    MPS, then the CPU: :func:`lm_course.training.default_device`), so inputs a notebook
    builds on it meet a model the trainer placed. On CUDA the notebooks pick their
    larger presets. ``threads`` defaults to ``OMP_NUM_THREADS`` when set: stored outputs
    are made with one thread, because results drift between thread counts.
    """
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_flush_denormal(True)  # much faster late in CPU training, same results
    # Libraries that import ``tqdm.auto`` warn, with an absolute path, when ipywidgets
    # is missing; the course's own progress bars are plain text, so the warning is
    # noise.
    warnings.filterwarnings("ignore", message="IProgress not found")
    try:  # PNG, not SVG: SVG embeds a date and the test of stored outputs compares it.
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        # "retina": PNG at twice the pixels of its display size, sharp on laptops.
        set_matplotlib_formats("retina")
    except ImportError:
        pass
    import matplotlib

    matplotlib.rcParams.update(
        {"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3.5)}
    )
    return _device.pick_device("auto")


# Written by ``make notebooks`` (lm_course.regenerate) in a checkout of the course.
TIMINGS = (
    Path(__file__).resolve().parents[1] / "book" / "generated" / "notebook_timings.json"
)


def show_run_time(notebook: str, budget_minutes: float) -> None:
    """Print how long ``notebook`` took, per machine, when its outputs were last made.

    Reads the timings ``make notebooks`` records (a checkout of the course has them; an
    installed package does not, and then says where to look). Fails loudly when the
    recorded CPU time is over the chapter's budget, so an over-long chapter cannot be
    published unnoticed.
    """
    table = json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {}
    measured: dict[str, float] = table.get(notebook, {})
    if not measured:
        print("run times: see the table in the book's preface")
    for machine, seconds in sorted(measured.items()):
        print(f"{machine}: about {seconds / 60:.1f} minutes")
    if measured and not any(machine.startswith("GPU") for machine in measured):
        print("GPU: not measured yet")
    over = {m: s for m, s in measured.items() if "CPU" in m and s > 60 * budget_minutes}
    assert not over, f"{notebook} is over its {budget_minutes}-minute budget: {over}"
