"""One progress bar for the whole course, switched off by one environment variable.

Set ``LM_COURSE_PROGRESS=0`` to silence every bar (CI and regenerating stored outputs
do). We use the plain text ``tqdm`` rather than ``tqdm.auto``: widget bars are blank in
a static book page and noisy in notebook diffs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.std import tqdm

ENV_VAR = "LM_COURSE_PROGRESS"


def progress_enabled() -> bool:
    """Return False when ``LM_COURSE_PROGRESS`` is set to 0, false, no or off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in {
        "0",
        "false",
        "no",
        "off",
    }


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` in a text progress bar (``tqdm``'s keyword arguments pass)."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
