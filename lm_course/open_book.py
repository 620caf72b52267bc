"""Open the built book in a web browser, but only where that is safe, and never block.

``make book`` ends with ``python -m lm_course.open_book _build/html/index.html``. On
macOS the page opens with ``open``; on Linux only when a graphical session is present
(``DISPLAY`` or ``WAYLAND_DISPLAY``), through :mod:`webbrowser`. Anywhere else (a
server, CI, a container, a terminal-only session) it does nothing: printing the path is
``make book``'s job. It always exits with status 0, so a missing browser never fails
the build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import webbrowser
from collections.abc import Mapping
from pathlib import Path


def can_open_browser(
    platform: str | None = None, env: Mapping[str, str] | None = None
) -> bool:
    """Return True when opening a browser window is expected to work without blocking.

    Args:
        platform: ``sys.platform`` value to decide for (defaults to the running one).
        env: environment to look at (defaults to ``os.environ``).
    """
    platform = sys.platform if platform is None else platform
    env = os.environ if env is None else env
    if env.get("CI"):
        return False
    if platform == "darwin":
        return True
    if platform.startswith("linux"):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return False


def _would_block(browser: webbrowser.BaseBrowser) -> bool:
    """True for console browsers (lynx, w3m, elinks...), which run in the foreground."""
    if isinstance(browser, webbrowser.UnixBrowser):
        return not browser.background
    return isinstance(browser, webbrowser.GenericBrowser) and not isinstance(
        browser, webbrowser.BackgroundBrowser
    )


def open_book(path: str | Path) -> bool:
    """Open ``path`` (an HTML file) in a browser when it safely can.

    Returns whether it tried.

    Never raises for a missing browser and never waits for the browser to exit.
    """
    page = Path(path).resolve()
    if not page.is_file() or not can_open_browser():
        return False
    try:
        if sys.platform == "darwin":
            subprocess.Popen(
                ["open", str(page)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            return True
        browser = webbrowser.get()
        if _would_block(browser):
            return False
        return browser.open(page.as_uri(), new=2)
    except (OSError, webbrowser.Error):
        return False


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m lm_course.open_book PATH``. Always returns 0."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lm_course.open_book PATH", file=sys.stderr)
        return 0
    open_book(args[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
