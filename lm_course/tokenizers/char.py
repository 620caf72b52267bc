"""A character-level tokenizer: one token per character of a fixed alphabet.

The simplest tokenizer there is, and the one the course starts with: the vocabulary is
the sorted set of characters of a training text, and a token id is a position in that
list. Tiny Shakespeare, for example, has 65 distinct characters, so its vocabulary has
65 ids.

Characters that were not in the training text have no id. By default ``encode`` refuses
them with a ``ValueError``; ``CharTokenizer.from_text(text, unk="<unk>")`` instead adds
one extra id, :attr:`CharTokenizer.unk_id` (always the *last* id, so the ids of the
known characters are the same with or without it), and maps every unknown character to
it.
That loses information: ``decode`` writes the ``unk`` string back in their place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from lm_course.checks import describe
from lm_course.tokenizers.files import build_from_file, read_tokenizer_file
from lm_course.tokenizers.ids import as_id_list

_FORMAT = "lm_course.CharTokenizer"


class CharTokenizer:
    """Map each character of a fixed, sorted alphabet to an integer id.

    Args:
        chars: the alphabet, as a string or a sequence of one-character strings; it is
            de-duplicated and sorted, so the same characters always give the same ids.
        unk: optional placeholder string for characters outside the alphabet. When
            given, it gets the id ``len(alphabet)`` (the last one) and unknown
            characters encode to that id instead of raising an error.

    Example:
        >>> tok = CharTokenizer.from_text("hello world")
        >>> tok.encode("hold")
        [3, 5, 4, 1]
        >>> tok.decode([3, 5, 4, 1])
        'hold'
    """

    def __init__(self, chars: str | Sequence[str], unk: str | None = None) -> None:
        if not isinstance(chars, str | Sequence):
            raise TypeError(
                "chars must be a string or a list of one-character strings, got "
                f"{describe(chars)}"
            )
        for i, ch in enumerate(chars):
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(
                    f"chars[{i}]={ch!r} is not a single character; pass a string or a "
                    "list of one-character strings"
                )
        if unk is not None:
            if not isinstance(unk, str) or unk == "":
                raise ValueError(
                    f"unk={unk!r} must be a non-empty string such as '<unk>'"
                )
            if unk in chars:
                raise ValueError(
                    f"unk={unk!r} is also a character of the alphabet, so decode could "
                    "not tell them apart; pick a placeholder that is not in the text, "
                    "e.g. '<unk>'"
                )
        self.chars: list[str] = sorted(set(chars))
        self.unk: str | None = unk
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(self.chars)}
        # itos is a list, not a dict: decoding is then a plain list lookup per id.
        self.itos: list[str] = self.chars + ([unk] if unk is not None else [])

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> CharTokenizer:
        """The tokenizer whose alphabet is every distinct character of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return cls(text, unk=unk)

    @property
    def vocab_size(self) -> int:
        """Number of ids: the alphabet size, plus one when ``unk`` is set."""
        return len(self.itos)

    @property
    def unk_id(self) -> int | None:
        """The id of unknown characters (the last id), or None without ``unk``."""
        return len(self.chars) if self.unk is not None else None

    def encode(self, text: str) -> list[int]:
        """Turn ``text`` into a list of ids, one per character (``""`` gives ``[]``).

        Raises:
            ValueError: for a character outside the alphabet when ``unk`` is not set.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        unk_id = self.unk_id
        ids = []
        for pos, ch in enumerate(text):
            i = self.stoi.get(ch, unk_id)
            if i is None:
                raise ValueError(
                    f"character {ch!r} at position {pos} is not in the vocabulary of "
                    f"{len(self.chars)} characters; build the tokenizer from text "
                    "that contains it, or pass unk='<unk>' to CharTokenizer.from_text "
                    "to map unknown characters to one id"
                )
            ids.append(i)
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Turn a list (or 1-D integer tensor) of ids back into text.

        Shape: ``ids`` is ``(seq,)``.
        """
        ids = as_id_list(ids, self.vocab_size)
        return "".join(self.itos[i] for i in ids)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to a JSON file (readable, and safe to load)."""
        data = {"format": _FORMAT, "chars": self.chars, "unk": self.unk}
        Path(path).write_text(
            json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        data = read_tokenizer_file(
            path, "CharTokenizer", {"chars": "the vocabulary"}, optional=("unk",)
        )
        unk = data.get("unk")
        return build_from_file(path, lambda: cls(data["chars"], unk=unk))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unk={self.unk!r})"
