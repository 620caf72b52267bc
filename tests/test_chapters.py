"""What a careful reader checks in every chapter and on the book's reference pages.

Fast checks of the sources (no notebook is run, no book is built): lines that fit the
page, the order of a chapter's opening cells, hardware needs and summaries, Chinese
terms that the glossary lists, citations that the references page lists, figures that
exist, and an errata page whose claims match the chapters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_COLUMNS = 88
COLAB_MARKER = '"google.colab" in sys.modules'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def _markdown(notebook: Path) -> str:
    return "\n\n".join(
        "".join(c["source"]) for c in _cells(notebook) if c["cell_type"] == "markdown"
    )


def columns(line: str) -> int:
    """Width of a line on the page: wide characters (Chinese) take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _text_outputs(cell: dict) -> list[str]:
    """The outputs a reader sees as printed text: streams, plain text and tracebacks."""
    texts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            texts.append("".join(output["text"]))
        elif output["output_type"] == "error":
            texts.append("\n".join(output.get("traceback", [])))
        else:
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return texts


def test_columns_counts_wide_characters_twice() -> None:
    assert columns("abc") == 3
    assert columns("子曰") == 4
    assert columns("a，b") == 4


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_code_and_printed_output_fit_the_page(notebook: Path) -> None:
    """No line of code or of printed output is wider than 88 columns."""
    too_wide = []
    for number, cell in enumerate(_cells(notebook)):
        if cell["cell_type"] != "code":
            continue
        sources = ["".join(cell["source"])]
        for kind, text in [("code", t) for t in sources] + [
            ("output", t) for t in _text_outputs(cell)
        ]:
            for line in text.splitlines():
                if columns(line) > MAX_COLUMNS:
                    too_wide.append(f"cell {number} {kind}: {line[:70]!r}...")
    assert not too_wide, "lines wider than 88 columns:\n" + "\n".join(too_wide)


def test_code_blocks_of_the_book_pages_fit_the_page() -> None:
    """The same 88 columns for the code blocks of the Markdown pages in book/."""
    too_wide = []
    for page in sorted(BOOK.glob("*.md")):
        fence, code = None, False  # the open fence, and whether it holds code
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            marker = re.match(r"\s*(`{3,})(.*)", line)
            if marker and fence is None:
                # A directive such as ```{figure} holds text, not code.
                fence, code = marker.group(1), not marker.group(2).startswith("{")
                continue
            if marker and marker.group(1) == fence and not marker.group(2).strip():
                fence = None
                continue
            if fence and code and columns(line) > MAX_COLUMNS:
                too_wide.append(f"{page.name}:{number}: {line[:60]!r}...")
    assert not too_wide, "code lines wider than 88 columns:\n" + "\n".join(too_wide)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_opens_with_its_title_then_the_colab_cell(notebook: Path) -> None:
    first, second = _cells(notebook)[:2]
    assert first["cell_type"] == "markdown", "the chapter must open with its title"
    assert "".join(first["source"]).startswith("# "), "the first line is the title"
    assert second["cell_type"] == "code" and COLAB_MARKER in "".join(
        second["source"]
    ), "the Colab install cell comes right below the title"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_states_its_needs_and_ends_with_two_summaries(notebook: Path) -> None:
    cells = _cells(notebook)
    opening = "".join(cells[0]["source"])
    assert "**What it needs.**" in opening, "say what the chapter needs to run"
    timing = "".join(cells[2]["source"])
    assert f'show_run_time("{notebook.name}"' in timing, (
        "the third cell prints the chapter's measured run time"
    )
    text = _markdown(notebook)
    assert re.search(r"(?m)^## Summary$", text), "an English summary"
    assert re.search(r"(?m)^## 小结$", text), "a Chinese summary"


def _chinese_terms(text: str) -> set[str]:
    """Chinese terms given in brackets after an English term: "(困惑度)".

    A bracket may hold several, "(BPE, 字节对编码)". Short pieces of Chinese only (at
    most 8 characters, at most one Latin letter as in "加k平滑"), and no bracket with
    Chinese punctuation in it: those are quotations of the articles, not terms.
    """
    terms = set()
    for group in re.findall(r"\(([^()]*)\)", text):
        if re.search(r"[，、；：。“”]", group):
            continue
        for piece in re.split(r"[,;]", group):
            piece = piece.strip()
            if (
                re.fullmatch(r"[\u4e00-\u9fff]+[A-Za-z]?[\u4e00-\u9fff]*", piece)
                and len(piece) <= 8
            ):
                terms.add(piece)
    return terms


def test_chinese_terms_are_found_in_brackets() -> None:
    text = (
        "a *token* (词元), BPE (BPE, 字节对编码), add-k (加k平滑), a quote "
        "(这是一个很长的引用句子不是术语), another (更大更强的LLM，如PaLM)"
    )
    assert _chinese_terms(text) == {"词元", "字节对编码", "加k平滑"}


def test_glossary_lists_every_chinese_term_the_chapters_give() -> None:
    glossary = (BOOK / "glossary.md").read_text(encoding="utf-8")
    missing = []
    for notebook in NOTEBOOKS:
        text = _markdown(notebook).split("## 小结")[0]  # the summary is all Chinese
        for term in sorted(_chinese_terms(text) - {"论语"}):  # a book's title
            if term not in glossary:
                missing.append(f"{notebook.name}: {term}")
    assert not missing, f"add these terms to book/glossary.md: {missing}"


NAME = r"[A-Z][a-zA-Z\u00c0-\u017f\-]+"
YEAR = r"((?:19|20)\d\d)"
CITATIONS = [
    re.compile(rf"\b({NAME})(?: [A-Z][a-z]+)? et al\.,? \(?{YEAR}\b"),  # Vaswani et al.
    re.compile(rf"\b({NAME}) and {NAME},? \(?{YEAR}\b"),  # Kudo and Richardson, 2018
    re.compile(rf"[(;] ?({NAME}(?: Team)?), {YEAR}\b"),  # (Zipf, 1949)
    re.compile(rf"\b([A-Z][a-z]+) \({YEAR}\)"),  # Shannon (1951)
]


def citations(text: str) -> set[tuple[str, str]]:
    """(first author, year) of every citation in a text."""
    text = re.sub(r"\s+", " ", text)
    found = set()
    for pattern in CITATIONS:
        for match in pattern.finditer(text):
            found.add((match.group(1), match.group(2)))
    return found - {("Transformer", year) for _, year in found}


def test_citations_are_recognised() -> None:
    text = (
        "as Vaswani et al. (2017) and (Kudo and Richardson, 2018; Zipf, 1949) show; "
        "Shannon (1951); BERT (2018) is a model, not a citation"
    )
    assert citations(text) == {
        ("Vaswani", "2017"),
        ("Kudo", "2018"),
        ("Zipf", "1949"),
        ("Shannon", "1951"),
    }


def test_references_list_every_work_the_book_cites() -> None:
    entries = re.split(
        r"\n(?=- )", (BOOK / "references.md").read_text(encoding="utf-8")
    )
    sources = {nb.name: _markdown(nb) for nb in NOTEBOOKS}
    for page in ("errata.md", "glossary.md", "preface.md"):
        sources[page] = (BOOK / page).read_text(encoding="utf-8")
    missing = sorted(
        f"{where}: {who}, {year}"
        for where, text in sources.items()
        for who, year in citations(text)
        if not any(who in entry and year in entry for entry in entries)
    )
    assert not missing, f"add these works to book/references.md: {missing}"


def test_figures_the_chapters_show_exist() -> None:
    shown = []
    for notebook in NOTEBOOKS:
        for path in re.findall(
            r"\]\((\.\./book/figures/[^)\s]+)\)", _markdown(notebook)
        ):
            shown.append(path)
            target = (notebook.parent / path).resolve()
            assert target.is_file(), (
                f"{notebook.name} shows {path}, which does not exist"
            )
            assert target.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert "../book/figures/lstm_cell.png" in shown
    assert "../book/figures/multi_head.png" in shown


def test_diagrams_script_draws_every_diagram(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BOOK / "figures" / "diagrams.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    for name in ("lstm_cell.png", "multi_head.png"):
        with Image.open(tmp_path / name) as image:
            assert image.width >= 1200, f"{name} is not sharp: {image.size}"


ERRATA = BOOK / "errata.md"
ROW = re.compile(
    r"^\| \[`(erratum-[\w-]+)`\]\(#\1\) \| ([^|]+) \| [^|]+ \| ([^|]+) \|$"
)


def _errata_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in ERRATA.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


def test_errata_table_and_sections_agree() -> None:
    text = ERRATA.read_text(encoding="utf-8")
    rows = _errata_rows()
    sections = set(re.findall(r"(?m)^\((erratum-[\w-]+)\)=$", text))
    assert rows, "the errata page has no table"
    assert set(rows) == sections, (
        f"in the table only: {set(rows) - sections}; "
        f"with a section only: {sections - set(rows)}"
    )
    for label, (_, backed) in rows.items():
        assert re.match(r"(a cell|cells) in |sources: |not yet shown", backed), (
            f"{label}: say how it is backed (a cell, sources, not yet shown): "
            f"{backed!r}"
        )


def test_an_erratum_is_shown_by_a_cell_only_where_a_chapter_shows_it() -> None:
    """'Cells in chapter N' means chapter N has the erratum box that links the entry.

    Every chapter the "Backed by" column names must link the entry, not only the first.
    """
    for label, (_, backed) in _errata_rows().items():
        chapters = re.findall(r"\(\.\./notebooks/(\w+)\.ipynb\)", backed)
        if backed.startswith(("a cell", "cells")):
            assert chapters, f"{label}: name the chapter whose cell shows it"
        for chapter in chapters:
            text = _markdown(REPO / "notebooks" / f"{chapter}.ipynb")
            assert f"{{ref}}`{label}`" in text, (
                f"{label}: {chapter} does not link this entry"
            )


def test_every_erratum_a_page_links_exists() -> None:
    sections = set(
        re.findall(r"(?m)^\((erratum-[\w-]+)\)=$", ERRATA.read_text(encoding="utf-8"))
    )
    pages = {nb.name: _markdown(nb) for nb in NOTEBOOKS}
    for md in BOOK.glob("*.md"):
        pages[md.name] = md.read_text(encoding="utf-8")
    for name, text in pages.items():
        for label in re.findall(r"`[^`<]*<?(erratum-[\w-]+)>?`", text):
            assert label in sections, f"{name} links {label}, which has no entry"
