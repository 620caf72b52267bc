"""A small Sphinx extension for the course's book: fixes to Jupyter Book 1's HTML.

Sphinx 7.4 writes an inline ``<script>`` twice when an extension adds it after the
builder has started (it compares a missing file name, ``None``, with ``""``). For
sphinx-thebe, which Jupyter Book always loads, the copy redeclares ``const
THEBE_JS_URL`` and every page logs "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has
already been declared". This extension drops the exact duplicates from each page's
script list, so pages load without JavaScript errors (the browser check in
``tests/test_book.py`` fails on any).
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _script_key(script: Any) -> tuple[Any, ...]:
    """What makes two script entries the same: file name, priority, attributes."""
    attributes = getattr(script, "attributes", {}) or {}
    return (
        getattr(script, "filename", script) or "",
        getattr(script, "priority", 500),
        tuple(sorted((str(k), str(v)) for k, v in attributes.items())),
    )


def drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Keep the first of any identical ``<script>`` entries of a page, in order."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the extension with Sphinx."""
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
