"""Reading a tokenizer's JSON file; errors name the file, the field and the fix.

A damaged or incomplete file (cut short by a full disk, edited by hand, written by
another version of the course) must not end in a bare ``KeyError`` or
``JSONDecodeError``: the reader needs to know which file, what is wrong in it, and what
to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def read_tokenizer_file(
    path: str | Path,
    kind: str,
    fields: Mapping[str, str],
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The JSON object in ``path``, written by ``{kind}.save``.

    Args:
        path: the file.
        kind: the class that wrote it, e.g. ``"CharTokenizer"``.
        fields: each required field and what it holds, e.g. ``{"chars": "the
            vocabulary"}``.
        optional: fields that may be missing.
    """
    path = Path(path)
    redo = f"write it again with {kind}.save"
    if not path.is_file():
        raise FileNotFoundError(f"no {kind} file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file, so not a {kind} file") from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column "
            f"{err.colno}): the file is damaged; {redo}"
        ) from None
    fmt = f"lm_course.{kind}"
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(
            f"{path} is not a {kind} file (expected 'format': {fmt!r}); write one with "
            f"{kind}.save"
        )
    for name, meaning in fields.items():
        if name not in data:
            raise ValueError(
                f"{path} has no field {name!r} ({meaning}): the file is incomplete; "
                f"{redo}"
            )
    unknown = sorted(set(data) - {"format", *fields, *optional})
    if unknown:
        raise ValueError(
            f"{path} has an unknown field {unknown[0]!r}; a {kind} file holds "
            f"{sorted({'format', *fields, *optional})}. Was it written by another "
            f"version of the course? {redo[0].upper()}{redo[1:]}"
        )
    return data


def build_from_file(path: str | Path, build: Callable[[], T]) -> T:
    """``build()``, with its ``TypeError`` or ``ValueError`` naming the file too.

    The tokenizer's own checks name the field (``chars[3]='ab' is not a single
    character``); this adds which file it came from.
    """
    try:
        return build()
    except (TypeError, ValueError) as err:
        raise type(err)(f"{path}: {err}") from None
