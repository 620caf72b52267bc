"""The published book: its sources, its build, and every page checked in a browser.

The build and the browser check live in this one module so that ``pytest -n 2 --dist
loadfile`` runs them on one worker, in order: the book is built once (a module
fixture), then each page is opened in headless Chromium. Without Chromium the browser
tests are skipped with a message saying how to install it, unless
``LM_COURSE_REQUIRE_BROWSER=1`` (set in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "_build"
HTML = BUILD / "html"
SCREENSHOTS = BUILD / "screenshots"
CHAPTER_MAP_SCRIPT = REPO / "book" / "figures" / "chapter_map.py"
CHAPTER_MAP_PNG = REPO / "book" / "figures" / "chapter_map.png"
TIMINGS = REPO / "book" / "generated" / "notebook_timings.md"
REPOSITORY_URL = "https://github.com/lm-course/lm-course"
COLAB_URL = (
    "https://colab.research.google.com/github/lm-course/lm-course/blob/main/{path}"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _load(name: str, path: Path) -> ModuleType:
    """Import a helper module by path, whether or not ``tests`` is a package."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


browser_check = _load(
    "lm_course_browser_check", Path(__file__).with_name("browser_check.py")
)

BookBrowser = browser_check.BookBrowser
PageReport = browser_check.PageReport
DOCUMENTS = browser_check.toc_documents(REPO)
CHAPTERS = [d for d in DOCUMENTS if d.startswith("notebooks/")]


# --- The sources of the book ----------------------------------------------------------


def test_toc_lists_existing_files_and_every_notebook() -> None:
    """Every toc entry exists, and every notebook in notebooks/ is in the toc."""
    missing = [
        d
        for d in DOCUMENTS
        if not any((REPO / f"{d}{ext}").is_file() for ext in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    notebooks = sorted(
        p.relative_to(REPO).with_suffix("").as_posix()
        for p in (REPO / "notebooks").glob("*.ipynb")
    )
    unlisted = [nb for nb in notebooks if nb not in DOCUMENTS]
    assert not unlisted, f"add these notebooks to _toc.yml: {unlisted}"


def test_chapter_map_script_writes_a_png(tmp_path: Path) -> None:
    """The figure script runs on its own and writes a real PNG of a sensible size."""
    out = tmp_path / "map.png"
    result = subprocess.run(
        [sys.executable, str(CHAPTER_MAP_SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    from PIL import Image

    with Image.open(out) as image:
        assert image.width >= 1000 and image.height >= 400, image.size


def test_chapter_map_marks_the_chapters_the_toc_lists(tmp_path: Path) -> None:
    """A chapter is available once the book lists it, whatever else is in notebooks/."""
    chapter_map = _load("lm_course_chapter_map", CHAPTER_MAP_SCRIPT)
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/preface\nparts:\n"
        "  - caption: Chapters\n    chapters:\n"
        "      - file: notebooks/01_background\n"
        "      - file: notebooks/04_transformer.ipynb\n"
        "      # - file: notebooks/05_pretraining\n"
        "  - caption: Appendices\n    chapters:\n"
        "      - file: book/notebooks_07_not_a_chapter\n",
        encoding="utf-8",
    )
    assert chapter_map.available_chapters(toc) == [1, 4]


def test_chapter_map_is_up_to_date() -> None:
    """The committed chapter map marks exactly the chapters that _toc.yml lists."""
    from PIL import Image

    chapter_map = _load("lm_course_chapter_map", CHAPTER_MAP_SCRIPT)
    expected = ",".join(
        str(n) for n in chapter_map.available_chapters(REPO / "_toc.yml")
    )
    with Image.open(CHAPTER_MAP_PNG) as image:
        drawn = image.text.get(chapter_map.METADATA_KEY)
    assert drawn == expected, (
        f"book/figures/chapter_map.png shows chapters {drawn} as available, but "
        f"_toc.yml lists {expected}: run `python book/figures/chapter_map.py` and "
        "commit the PNG"
    )


def test_timings_table_has_a_row_per_chapter() -> None:
    """The generated timings table that the preface includes names every chapter."""
    text = TIMINGS.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    for chapter in CHAPTERS:
        name = Path(chapter).name
        assert any(name in row for row in rows), f"{TIMINGS.name} has no row for {name}"
    assert not re.search(r"(?m)^#", text), f"{TIMINGS.name} must not contain headings"


def test_datasets_page_credits_every_data_file() -> None:
    """Every file the course downloads is on the data sets page, URL and checksum."""
    from lm_course.data.registry import DATASETS

    page = (REPO / "book" / "datasets.md").read_text(encoding="utf-8")
    for dataset in DATASETS.values():
        for data_file in dataset.files:
            assert data_file.url in page, (
                f"{data_file.path}: pinned URL missing from the page"
            )
            assert data_file.sha256 in page, (
                f"{data_file.path}: sha256 missing from the page"
            )


def test_exercises_page_shows_every_solution() -> None:
    """Every ``solution_*`` of the exercise modules is on the exercises page."""
    page = (REPO / "book" / "exercises.md").read_text(encoding="utf-8")
    included = set(re.findall(r"(?m)^:pyobject: (\w+)$", page))
    missing = []
    for module in sorted((REPO / "lm_course" / "exercises").glob("ch*.py")):
        names = re.findall(
            r"(?m)^def (solution_\w+)\(", module.read_text(encoding="utf-8")
        )
        directive = re.escape(
            f"{{literalinclude}} ../lm_course/exercises/{module.name}"
        )
        pattern = re.compile(directive + r"\n:pyobject: (\w+)")
        shown = set(pattern.findall(page))
        missing += [f"{module.name}: {name}" for name in names if name not in shown]
    assert not missing, f"add these solutions to book/exercises.md: {missing}"
    assert included, "the exercises page includes no solutions"


# --- lm_course.open_book --------------------------------------------------------------


def test_open_book_only_where_a_browser_can_open() -> None:
    from lm_course.open_book import can_open_browser

    assert can_open_browser("darwin", {})
    assert not can_open_browser("darwin", {"CI": "true"})
    assert can_open_browser("linux", {"DISPLAY": ":0"})
    assert can_open_browser("linux", {"WAYLAND_DISPLAY": "wayland-0"})
    assert not can_open_browser("linux", {})
    assert not can_open_browser("win32", {})


def test_open_book_does_nothing_without_a_display(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import webbrowser

    from lm_course import open_book

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("no browser may be started here")

    monkeypatch.setattr(webbrowser, "get", fail)
    monkeypatch.setattr(open_book.subprocess, "Popen", fail)
    monkeypatch.setattr(open_book.sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    assert open_book.open_book(page) is False
    assert open_book.main([str(page)]) == 0
    assert open_book.main([]) == 0
    assert open_book.main([str(tmp_path / "missing.html")]) == 0


def test_open_book_never_waits_for_a_console_browser() -> None:
    import webbrowser

    from lm_course.open_book import _would_block

    assert _would_block(webbrowser.GenericBrowser("lynx"))
    assert not _would_block(webbrowser.BackgroundBrowser("xdg-open"))


# --- Building the book ----------------------------------------------------------------


def _jupyter_book() -> list[str]:
    local = Path(sys.executable).with_name("jupyter-book")
    found = str(local) if local.is_file() else shutil.which("jupyter-book")
    if not found:
        pytest.fail("jupyter-book is not installed: pip install -e '.[book]'")
    return [found]


@pytest.fixture(scope="module")
def built_book() -> subprocess.CompletedProcess[str]:
    """Build the book once for this module: jupyter-book build . -W --keep-going --all.

    ``--all`` re-reads every page: an incremental build skips unchanged pages and with
    them their warnings, so a second build would pass even though a page still has a
    problem.
    """
    result = subprocess.run(
        [*_jupyter_book(), "build", ".", "-W", "--keep-going", "--all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    return result


@pytest.mark.slow
def test_book_builds_without_warnings(
    built_book: subprocess.CompletedProcess[str],
) -> None:
    if built_book.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", built_book.stdout + built_book.stderr)
        warnings = [
            line
            for line in log.splitlines()
            if re.search(r"WARNING|ERROR|CRITICAL|Exception", line)
        ]
        shown = "\n".join(warnings) if warnings else log[-4000:]
        pytest.fail(
            f"jupyter-book build failed (exit {built_book.returncode}):\n{shown}"
        )
    assert (HTML / "index.html").is_file()
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file(), (
        "MathJax is not bundled"
    )


# --- The browser check ----------------------------------------------------------------


def _require_browser() -> None:
    """Skip without Chromium, with the command that installs it; fail instead in CI."""
    reason = browser_check.browser_missing()
    if reason:
        if os.environ.get("LM_COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LM_COURSE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


# A page with one of each fault the check must catch, and code that must not be flagged.
# "localhost" is not the server's 127.0.0.1, so the script counts as an outside request;
# nothing listens on port 9, so it fails at once without any network.
BROKEN_PAGE = """<!DOCTYPE html>
<html><head><title>broken</title>
<script src="http://localhost:9/cdn.js"></script>
<script>notDefinedAnywhere();</script>
</head><body>
<p>Raw TeX: $$x^2$$ and \\frac{a}{b}</p>
<pre>$$ \\frac{code}{is fine} $$</pre>
<img src="missing.png" alt="missing">
<a href="nowhere.html">a missing page</a>
<a href="#no-such-anchor">a missing anchor</a>
<a href="page.html#here">a good link</a><p id="here">here</p>
<pre style="width: 300px; overflow-x: auto">WIDE_LINE</pre>
<pre style="width: 300px; overflow-x: auto">a short line fits</pre>
</body></html>
""".replace("WIDE_LINE", "a line far too long for its box " * 8)


@pytest.mark.browser
def test_browser_check_catches_each_kind_of_fault(tmp_path: Path) -> None:
    """The checker itself: a deliberately broken page yields every kind of problem."""
    _require_browser()
    (tmp_path / "page.html").write_text(BROKEN_PAGE, encoding="utf-8")
    with BookBrowser(tmp_path) as chromium:
        report = chromium.check("page.html")
    found = "\n".join(report.problems)
    for expected in (
        "raw TeX visible",
        "broken image",
        "browser console error",
        "notDefinedAnywhere",
        "outside the book",
        "the server answered 404",
        "broken link 'nowhere.html'",
        "no anchor #no-such-anchor",
        "horizontally scrolling block",
        "a line far too long",
    ):
        assert expected in found, f"the check missed {expected!r}; it found:\n{found}"
    assert "is fine" not in found, "code blocks must not be checked for TeX"
    assert "page.html#here" not in found
    assert found.count("horizontally scrolling") == 1, "only the wide block scrolls"


@pytest.fixture(scope="module")
def browser(
    built_book: subprocess.CompletedProcess[str],
) -> Iterator[BookBrowser]:
    """Headless Chromium on the built book; without it a skip (in CI a failure)."""
    _require_browser()
    if not (HTML / "index.html").is_file():
        pytest.fail("the book was not built; see test_book_builds_without_warnings")
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    with BookBrowser(HTML, screenshots=SCREENSHOTS) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page_report(browser: BookBrowser) -> Callable[[str], PageReport]:
    """Check a page once and remember the report, so several tests can look at it."""
    reports: dict[str, PageReport] = {}

    def report(document: str) -> PageReport:
        if document not in reports:
            reports[document] = browser.check(f"{document}.html")
        return reports[document]

    return report


@pytest.mark.slow
@pytest.mark.browser
def test_front_page_redirects_to_the_preface(browser: BookBrowser) -> None:
    root_page = f"{DOCUMENTS[0]}.html"
    browser.open("index.html")
    url = browser.wait_for_url(root_page)
    assert url.split("#")[0].endswith(root_page), f"index.html led to {url}"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("document", DOCUMENTS)
def test_page_renders(page_report: Callable[[str], PageReport], document: str) -> None:
    """Formulas typeset, images shown; no script errors, outside requests or dead links.

    Also checks that no code block or output scrolls sideways.
    """
    report = page_report(document)
    assert not report.problems, report.summary() + f"\nscreenshot: {report.screenshot}"
    if document == DOCUMENTS[0]:
        assert report.images >= 1, "the preface should show the chapter map"
        assert report.typeset_formulas >= 1, "the preface's formula was not typeset"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_colab_and_repository_buttons(
    page_report: Callable[[str], PageReport], chapter: str
) -> None:
    report = page_report(chapter)
    colab = COLAB_URL.format(path=f"{chapter}.ipynb")
    assert colab in report.links, (
        f"no Colab button linking to {colab}; links to Colab on the page: "
        f"{[link for link in report.links if 'colab' in link]}"
    )
    assert REPOSITORY_URL in report.links, "no repository button"
    issues = [
        link for link in report.links if link.startswith(f"{REPOSITORY_URL}/issues/new")
    ]
    assert issues, "no issues button"
