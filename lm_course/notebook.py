"""Set-up shared by every notebook: determinism, device choice and PNG figures."""

from __future__ import annotations

import os
import random
import warnings

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
    try:  # PNG, not SVG: SVG embeds a date and the test of stored outputs compares it
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:
        pass
    import matplotlib

    matplotlib.rcParams.update(
        {"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3.5)}
    )
    return _device.pick_device("auto")
