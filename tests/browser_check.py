"""Check the built book in a real browser: formulas, images, scripts, links, buttons.

``tests/test_book.py`` uses this module; it can also be run on its own after
``make book``::

    python tests/browser_check.py       # checks _build/html, prints a report per page

The book is served from ``_build/html`` on 127.0.0.1 (a free port, a thread of
:mod:`http.server`) and every page listed in ``_toc.yml`` is opened in headless Chromium
through Selenium. For each page the check waits for MathJax to finish and reports:

- raw TeX left in the visible text (``$$``, ``\\(``, ``\\frac`` ...), a formula MathJax
  did not typeset, or a MathJax error;
- an image that did not load (``naturalWidth == 0``), or any file the local server
  answered with an error;
- a JavaScript error in the browser log, or a request for anything not on the local
  server (the book must work offline);
- a link to another file of the book that does not exist, or to an anchor that is
  missing;
- a code block or a cell's output that scrolls sideways (wider than its box): lines of
  code and output must fit the page (the course keeps them to 88 characters).

It also saves a full-page screenshot of every page in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("LM_COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("LM_COURSE_CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL_HINT = "sudo apt-get install chromium chromium-driver"

# Flags known to run Debian's Chromium headless in containers and CI, with no network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
WINDOW_SIZE = (1280, 1000)

# TeX that should never be visible once MathJax has run (code blocks are not looked at).
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]"
    r"|\\(?:frac|dfrac|sqrt|sum|prod|int|text|textbf|mathrm|mathbf|mathcal|boldsymbol"
    r"|operatorname|begin|end|left|right|top|cdot|times|odot|alpha|beta|gamma|theta"
    r"|sigma|epsilon|lambda|mu|log|exp|approx|le|ge|in|mid|dots|ldots|hat|tilde)(?![A-Za-z])"
    r"|[\^_]\{"
)

# Everything a page needs must come from the local server; these schemes never go out.
LOCAL_SCHEMES = (
    "data:",
    "blob:",
    "about:",
    "chrome:",
    "chrome-extension:",
    "devtools:",
)

SCREENSHOT_MAX_HEIGHT = 12000

_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
const hasMath = document.querySelector('.math') !== null;
(function poll() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(
      () => done({status: 'typeset', hasMath: hasMath}),
      (e) => done({status: 'error', error: String(e), hasMath: hasMath}));
    return;
  }
  if (!hasMath) { done({status: 'no-math', hasMath: false}); return; }
  if (Date.now() - start > 20000) { done({status: 'timeout', hasMath: true}); return; }
  setTimeout(poll, 100);
})();
"""

_WAIT_FOR_IMAGES = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  const pending = Array.from(document.images).filter((img) => !img.complete).length;
  if (pending === 0 || Date.now() - start > 15000) { done(pending); return; }
  setTimeout(poll, 100);
})();
"""

_COLLECT = """
const skip = 'script, style, noscript, template, pre, code, kbd, samp, textarea, '
           + 'mjx-container, mjx-assistive-mml, .highlight';
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const texts = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (parent && !parent.closest(skip) && node.textContent.trim()) {
    texts.push(node.textContent);
  }
}
const untypeset = Array.from(document.querySelectorAll('.math'))
  .filter((el) => !el.querySelector('mjx-container'))
  .map((el) => el.textContent.trim().slice(0, 80));
const mathErrors = Array.from(document.querySelectorAll('mjx-merror'))
  .map((el) => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 120));
const images = Array.from(document.images).map((img) => ({
  src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth}));
const links = Array.from(document.querySelectorAll('a[href]')).map((a) => ({
  raw: a.getAttribute('href'), href: a.href}));
// A block wider than its box scrolls sideways (or is cut off): code, printed output,
// and the output area of a notebook cell.
const scrolling = Array.from(document.querySelectorAll(
    'pre, div.highlight, div.cell_output, div.output'))
  .filter((el) => el.scrollWidth > el.clientWidth + 1)
  .map((el) => ({width: el.scrollWidth, box: el.clientWidth,
                 line: (el.textContent || '').split('\\n').reduce(
                   (a, b) => (b.length > a.length ? b : a), '').trim().slice(0, 60)}));
return {texts: texts, untypeset: untypeset, mathErrors: mathErrors,
        typeset: document.querySelectorAll('mjx-container').length,
        images: images, links: links, scrolling: scrolling,
        title: document.title, url: location.href};
"""


def toc_documents(repo: Path = REPO) -> list[str]:
    """Return the documents of ``_toc.yml`` in order (root first), no extensions."""
    toc = yaml.safe_load((repo / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                docs.append(str(entry["file"]))
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key, []))

    walk(toc.get("parts", []) + toc.get("chapters", []))
    return [re.sub(r"\.(md|ipynb)$", "", d) for d in docs]


def browser_missing() -> str | None:
    """Return why the browser check cannot run here, or None when it can."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (
            f"headless Chromium not found ({', '.join(missing)}); "
            f"install it: {INSTALL_HINT}"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return (
            "selenium is not installed; install the test extras: "
            "pip install -e '.[test]'"
        )
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the book quietly and remembers every request that failed."""

    def __init__(self, *args: Any, failures: list[str], **kwargs: Any) -> None:
        self._failures = failures
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).isdigit() and int(code) >= 400:
            self._failures.append(f"{code} {self.path}")


class BookServer:
    """Serve a folder on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.failures: list[str] = []
        handler = functools.partial(
            _Handler, directory=str(root), failures=self.failures
        )
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> BookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take_failures(self) -> list[str]:
        """Return and forget the failed requests since the last call."""
        failed = list(self.failures)
        self.failures.clear()
        return failed


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "id" or (name == "name" and tag == "a")):
                self.anchors.add(value)


@functools.lru_cache(maxsize=256)
def _anchors(path: Path) -> frozenset[str]:
    parser = _AnchorParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.anchors)


@dataclass
class PageReport:
    """What the browser saw on one page."""

    page: str
    url: str = ""
    title: str = ""
    problems: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    typeset_formulas: int = 0
    images: int = 0
    screenshot: Path | None = None

    def summary(self) -> str:
        """One line per problem, or a one-line all-clear."""
        if not self.problems:
            return (
                f"{self.page}: ok ({self.typeset_formulas} formulas, "
                f"{self.images} images, {len(self.links)} links)"
            )
        return f"{self.page}: {len(self.problems)} problem(s)\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )


class BookBrowser:
    """Headless Chromium, driven by Selenium, checking the book served locally."""

    def __init__(self, html_root: Path, screenshots: Path | None = None) -> None:
        self.html_root = html_root.resolve()
        self.screenshots = screenshots
        self._profile = tempfile.mkdtemp(prefix="lm-course-chromium-")
        self.server = BookServer(self.html_root)
        self.driver: Any = None

    def __enter__(self) -> BookBrowser:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        width, height = WINDOW_SIZE
        for flag in (
            *CHROMIUM_FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile}",
        ):
            options.add_argument(flag)
        options.set_capability(
            "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
        )
        self.server.__enter__()
        try:
            self.driver = webdriver.Chrome(
                options=options, service=Service(executable_path=str(CHROMEDRIVER))
            )
        except Exception:
            self.server.__exit__(None, None, None)
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(40)
        if self.screenshots is not None:
            self.screenshots.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.driver is not None:
                self.driver.quit()
        finally:
            self.server.__exit__(None, None, None)
            shutil.rmtree(self._profile, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def open(self, page: str) -> str:
        """Load ``page`` (a path below the book's root); return the URL it shows."""
        self._drain_logs()
        self.server.take_failures()
        self.driver.get(self.base_url + page)
        return str(self.driver.current_url)

    def wait_for_url(self, suffix: str, timeout: float = 10.0) -> str:
        """Wait until the browser's URL ends with ``suffix`` (redirects); return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = str(self.driver.current_url)
            if url.split("#")[0].endswith(suffix):
                return url
            time.sleep(0.1)
        return str(self.driver.current_url)

    def check(self, page: str) -> PageReport:
        """Open ``page`` (such as ``"book/preface.html"``) and report every problem."""
        report = PageReport(page=page)
        self.open(page)
        mathjax = self.driver.execute_async_script(_WAIT_FOR_MATHJAX)
        pending = self.driver.execute_async_script(_WAIT_FOR_IMAGES)
        seen = self.driver.execute_script(_COLLECT)
        report.url, report.title = seen["url"], seen["title"]
        report.typeset_formulas = int(seen["typeset"])
        report.images = len(seen["images"])
        problems = report.problems

        if mathjax["status"] == "timeout":
            problems.append(
                "MathJax did not load within 20 s, so formulas stay raw TeX"
            )
        elif mathjax["status"] == "error":
            problems.append(f"MathJax failed: {mathjax.get('error')}")
        for tex in seen["untypeset"]:
            problems.append(f"formula not typeset by MathJax: {tex!r}")
        for err in seen["mathErrors"]:
            problems.append(f"MathJax error in a formula: {err!r}")
        problems.extend(_raw_tex(seen["texts"]))

        if pending:
            problems.append(f"{pending} image(s) still loading after 15 s")
        for img in seen["images"]:
            if img["complete"] and not img["width"]:
                problems.append(f"broken image (naturalWidth == 0): {img['src']}")

        problems.extend(self._log_problems())
        problems.extend(
            f"the server answered {f}"
            for f in self.server.take_failures()
            if not f.endswith("/favicon.ico")
        )

        for block in seen["scrolling"]:
            problems.append(
                f"horizontally scrolling block ({block['width']} px wide in a "
                f"{block['box']} px box); its longest line: {block['line']!r}"
            )

        report.links = [link["href"] for link in seen["links"]]
        problems.extend(self._link_problems(seen["links"]))
        report.screenshot = self._screenshot(page)
        return report

    def _drain_logs(self) -> None:
        for kind in ("browser", "performance"):
            self.driver.get_log(kind)

    def _log_problems(self) -> list[str]:
        problems = []
        for entry in self.driver.get_log("browser"):
            if entry.get("level") != "SEVERE":
                continue
            message = str(entry.get("message", ""))
            # Browsers ask for /favicon.ico on their own; the book does not link it, so
            # a 404 for it says nothing about the page. Any other SEVERE entry fails
            # the page.
            if "/favicon.ico" in message:
                continue
            problems.append(f"browser console error: {message}")
        for entry in self.driver.get_log("performance"):
            try:
                event = json.loads(entry["message"])["message"]
            except (KeyError, ValueError):
                continue
            if event.get("method") != "Network.requestWillBeSent":
                continue
            url = str(event.get("params", {}).get("request", {}).get("url", ""))
            if (
                url
                and not url.startswith(self.base_url)
                and not url.startswith(LOCAL_SCHEMES)
            ):
                problems.append(
                    f"request to a resource outside the book (needs a network): {url}"
                )
        return problems

    def _link_problems(self, links: list[dict[str, str]]) -> list[str]:
        problems = []
        checked: set[str] = set()
        for link in links:
            href = link["href"]
            if not href.startswith(self.base_url) or href in checked:
                continue
            checked.add(href)
            parts = urlsplit(href)
            rel = unquote(parts.path)[len(urlsplit(self.base_url).path) :]
            target = self.html_root / rel
            if rel == "" or rel.endswith("/"):
                target = target / "index.html"
            if not target.is_file():
                problems.append(
                    f"broken link {link['raw']!r}: no file {rel or 'index.html'}"
                )
                continue
            fragment = unquote(parts.fragment)
            if (
                fragment
                and target.suffix == ".html"
                and fragment not in _anchors(target)
            ):
                problems.append(
                    f"broken link {link['raw']!r}: no anchor #{fragment} in {rel}"
                )
        return problems

    def _screenshot(self, page: str) -> Path | None:
        if self.screenshots is None:
            return None
        out = self.screenshots / (
            re.sub(r"[^A-Za-z0-9_.-]+", "_", page.removesuffix(".html")) + ".png"
        )
        # Grow the window to the page's full height for one screenshot, then restore it:
        # more faithful than capturing beyond the viewport, which can shift the layout.
        width, height = WINDOW_SIZE
        full = int(
            self.driver.execute_script(
                "return Math.max(document.documentElement.scrollHeight, "
                "document.body.scrollHeight)"
            )
        )
        try:
            self.driver.set_window_size(
                width, min(max(full, height), SCREENSHOT_MAX_HEIGHT)
            )
            self.driver.save_screenshot(str(out))
        finally:
            self.driver.set_window_size(width, height)
        return out


def _raw_tex(texts: list[str]) -> list[str]:
    """Report visible text that still looks like TeX source."""
    problems = []
    for text in texts:
        match = RAW_TEX.search(text)
        if match:
            start = max(match.start() - 30, 0)
            snippet = " ".join(text[start : match.end() + 30].split())
            problems.append(
                f"raw TeX visible on the page ({match.group(0)!r}): ...{snippet}..."
            )
    return problems


def pages_to_check(repo: Path = REPO) -> Iterator[str]:
    """The HTML pages of every document in the table of contents."""
    for doc in toc_documents(repo):
        yield f"{doc}.html"


def main(argv: list[str] | None = None) -> int:
    """Check every page of an already built book, print a report; exit 1 on problems."""
    args = sys.argv[1:] if argv is None else argv
    html_root = Path(args[0]) if args else REPO / "_build" / "html"
    reason = browser_missing()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    if not (html_root / "index.html").is_file():
        print(f"no built book at {html_root}; run `make book` first", file=sys.stderr)
        return 2
    failed = 0
    with BookBrowser(
        html_root, screenshots=html_root.parent / "screenshots"
    ) as browser:
        for page in pages_to_check():
            report = browser.check(page)
            failed += bool(report.problems)
            print(report.summary())
    print(f"screenshots in {html_root.parent / 'screenshots'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
