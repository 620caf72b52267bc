"""Byte-level byte-pair encoding (BPE), written from scratch to be read.

The idea (Sennrich et al., 2016; byte-level as in GPT-2):

1. Start from bytes. Any text, in any language, is a sequence of UTF-8 bytes, so the 256
   byte values are a vocabulary that can spell everything: ids 0..255 *are* the bytes.
2. Training: count every pair of adjacent tokens in the training text, give the most
   frequent pair a new id (256, 257, ...), replace it everywhere, and repeat until the
   vocabulary has ``vocab_size`` ids. The ordered list of merges *is* the tokenizer.
3. Encoding new text: start from its bytes and apply the learned merges, earliest first.
4. Decoding: look up the bytes of each id, join them, and decode the UTF-8.

Before counting, text is cut into chunks (words, numbers, punctuation runs, whitespace)
with a regular expression like GPT-2's, and merges never cross a chunk boundary: " the"
can become one token, but "e t" cannot. That keeps tokens word-like and makes training
faster, because the same chunk ("the" appears thousands of times) only needs counting
once.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import torch

from lm_course.checks import check_bool, check_int, describe
from lm_course.progress import progress
from lm_course.tokenizers.files import build_from_file, read_tokenizer_file
from lm_course.tokenizers.ids import as_id_list

_FORMAT = "lm_course.BPETokenizer"

#: The pre-split pattern, with the standard library ``re`` only. In order, a chunk is:
#: an English contraction suffix; an optional space then letters; an optional space then
#: digits; an optional space then other symbols; whitespace not followed by a non-space
#: (so the last space before a word stays with the word); any other whitespace.
#: ``[^\W\d_]`` means "a word character that is not a digit or underscore", i.e. a
#: letter in any script (Chinese characters included). Every character falls in some
#: branch, so the chunks always join back into the original text.
SPLIT_PATTERN = r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"

Pair = tuple[int, int]


class BPETokenizer:
    """A byte-level BPE tokenizer: 256 byte tokens plus an ordered list of merges.

    Build one with :meth:`train` (or :meth:`load`); ``BPETokenizer()`` with no merges
    encodes text as raw UTF-8 bytes.

    Attributes:
        merges: the merges in the order they were learned, as ``((a, b), new_id)``: the
            adjacent tokens ``a`` and ``b`` become the single token ``new_id``.
        vocab: maps each id to the bytes it stands for.

    Example:
        >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=262)
        >>> [tok.vocab[new_id] for _, new_id in tok.merges]
        [b'lo', b'low', b' low', b' lowe', b'st', b' lower']
        >>> tok.tokens("slower lows")
        ['s', 'low', 'e', 'r', ' low', 's']
    """

    def __init__(self, merges: list[tuple[Pair, int]] | None = None) -> None:
        self.merges: list[tuple[Pair, int]] = []
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        # Rank of each pair = the order it was learned in; encoding applies low ranks
        # first.
        self._rank: dict[Pair, int] = {}
        self._cache: dict[str, list[int]] = {}
        self._pattern = re.compile(SPLIT_PATTERN)
        if merges is not None and not isinstance(merges, list | tuple):
            raise TypeError(
                f"merges must be a list of ((a, b), new_id), got {describe(merges)}"
            )
        for i, merge in enumerate(merges or []):
            try:
                (a, b), new_id = merge
            except (TypeError, ValueError):
                raise TypeError(
                    f"merges[{i}] must be ((a, b), new_id), got {describe(merge)}"
                ) from None
            for value in (a, b, new_id):
                check_int(f"merges[{i}] ids", value, minimum=0)
            self._add_merge((a, b), new_id)

    def _add_merge(self, pair: Pair, new_id: int) -> None:
        a, b = pair
        if new_id != len(self.vocab):
            raise ValueError(
                f"merge {pair} -> {new_id}: new ids must count up from 256 without "
                f"gaps (expected {len(self.vocab)}); is the merges list in learning "
                "order?"
            )
        if a not in self.vocab or b not in self.vocab:
            raise ValueError(
                f"merge {pair} -> {new_id} uses an id that does not exist yet"
            )
        self.merges.append((pair, new_id))
        self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        self._rank[pair] = len(self._rank)

    @property
    def vocab_size(self) -> int:
        """Number of ids: 256 bytes plus one per merge."""
        return len(self.vocab)

    # ------------------------------------------------------------------------- training

    @classmethod
    def train(
        cls, text: str, vocab_size: int, *, verbose: bool = False
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` and return the tokenizer.

        Ties (two pairs with the same count) go to the smaller pair ``(a, b)``, so
        training on the same text always gives the same merges.

        Args:
            text: the training text.
            vocab_size: the final number of ids, at least 256 (the byte tokens).
            verbose: print each merge as it is learned.

        If the text runs out of pairs to merge first (every chunk is a single token),
        training stops early with a warning and the tokenizer is smaller than
        ``vocab_size``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        check_int(
            "vocab_size",
            vocab_size,
            minimum=256,
            hint="; a byte-level BPE starts with 256 byte tokens; pass vocab_size=256 "
            "+ the number of merges you want (e.g. 512)",
        )
        check_bool("verbose", verbose)
        tok = cls()
        _check_encodable(text)

        # Each distinct chunk is stored once, as a list of ids, with how often it
        # occurs.
        chunk_counts = Counter(tok._pattern.findall(text))
        words: list[list[int]] = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        freqs: list[int] = list(chunk_counts.values())

        # pair_counts[p]: how often pair p occurs in the whole text.
        # where[p]: which words contain p (it may list a few that no longer do;
        # harmless).
        pair_counts: Counter[Pair] = Counter()
        where: defaultdict[Pair, set[int]] = defaultdict(set)
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += freq
                where[pair].add(w)

        num_merges = vocab_size - 256
        # With verbose=True the printed merges show the progress; no bar on top of them.
        steps = (
            range(num_merges)
            if verbose
            else progress(range(num_merges), desc="BPE merges")
        )
        for step in steps:
            if not pair_counts:
                warnings.warn(
                    f"BPE training stopped after {step} merges "
                    f"(vocab_size={tok.vocab_size}, not {vocab_size}): every chunk "
                    "of the text is already one token; "
                    "train on more text or ask for a smaller vocab_size",
                    stacklevel=2,
                )
                break
            # The most frequent pair; on a tie, the smaller pair (a, b) wins.
            best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
            count = pair_counts[best]
            new_id = tok.vocab_size
            tok._add_merge(best, new_id)
            if verbose:
                shown = tok._show(tok.vocab[new_id])
                print(
                    f"merge {step + 1}/{num_merges}: {best} -> {new_id} {shown!r} "
                    f"({count})"
                )

            # Only the words that contain `best` change. For each one, take its old
            # pairs out of the counts, merge, and put its new pairs back in.
            for w in where.pop(best):
                word, freq = words[w], freqs[w]
                merged = _merge(word, best, new_id)
                if len(merged) == len(word):
                    continue
                for pair in zip(word, word[1:]):
                    pair_counts[pair] -= freq
                    if pair_counts[pair] == 0:
                        del pair_counts[pair]
                for pair in zip(merged, merged[1:]):
                    pair_counts[pair] += freq
                    where[pair].add(w)
                words[w] = merged
            pair_counts.pop(best, None)
        return tok

    # ------------------------------------------------------------------------- encoding

    def encode(self, text: str) -> list[int]:
        """Turn ``text`` into token ids (``""`` gives ``[]``).

        Works for any valid Unicode text, and ``decode(encode(text)) == text`` always.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        _check_encodable(text)
        ids: list[int] = []
        for chunk in self._pattern.findall(text):
            # Texts repeat their words, so remember each chunk's encoding.
            if chunk not in self._cache:
                self._cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
            ids.extend(self._cache[chunk])
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        """Apply the merges to one chunk, the earliest-learned adjacent pair first."""
        ids = list(data)
        while len(ids) >= 2:
            pair = min(
                zip(ids, ids[1:]), key=lambda p: self._rank.get(p, len(self._rank))
            )
            if pair not in self._rank:
                break  # no adjacent pair was ever merged: done
            ids = _merge(ids, pair, self.merges[self._rank[pair]][1])
        return ids

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """Turn ids (a list, or a 1-D integer tensor ``(seq,)``) back into text.

        A list of ids that stops in the middle of a multi-byte character (possible when
        you cut a sequence at an arbitrary point) cannot be decoded exactly; such bytes
        come out as the replacement character ``\\ufffd``.
        """
        ids = as_id_list(ids, self.vocab_size)
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[str]:
        """Show how ``text`` is cut into tokens, one string per token.

        A token can hold part of a multi-byte character (a Chinese character is 3 bytes
        in UTF-8 and may be split across tokens); such stray bytes are shown as
        ``<0xE4>``.
        """
        return [self._show(self.vocab[i]) for i in self.encode(text)]

    @staticmethod
    def _show(data: bytes) -> str:
        """Decode ``data`` as UTF-8; bytes of no whole character show as <0xNN>."""
        out = []
        while data:
            try:
                out.append(data.decode("utf-8"))
                break
            except UnicodeDecodeError as err:
                out.append(data[: err.start].decode("utf-8"))
                out.append("".join(f"<0x{b:02X}>" for b in data[err.start : err.end]))
                data = data[err.end :]
        return "".join(out)

    # -------------------------------------------------------------------- save and load

    def save(self, path: str | Path) -> None:
        """Write the merges to a JSON file (the vocabulary follows from them)."""
        data = {
            "format": _FORMAT,
            "pattern": SPLIT_PATTERN,
            "merges": [[a, b, new_id] for (a, b), new_id in self.merges],
        }
        Path(path).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        fields = {
            "pattern": "the pre-split pattern",
            "merges": "the vocabulary, as merges",
        }
        data = read_tokenizer_file(path, "BPETokenizer", fields)
        if data["pattern"] != SPLIT_PATTERN:
            raise ValueError(
                f"{path} was saved with a different pre-split pattern; its merges "
                "would not give the same tokens with this version of the course: "
                "retrain the tokenizer"
            )
        merges = data["merges"]

        def build() -> BPETokenizer:
            if not isinstance(merges, list) or not all(
                isinstance(m, list) and len(m) == 3 for m in merges
            ):
                raise ValueError("field 'merges' must be a list of [a, b, new_id]")
            return cls([((a, b), new_id) for a, b, new_id in merges])

        return build_from_file(path, build)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"


def _merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each non-overlapping occurrence of ``pair`` in ``ids``, left to right."""
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _check_encodable(text: str) -> None:
    """Refuse text with no UTF-8 form (lone surrogates, e.g. from a broken decode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"text has {text[err.start]!r} at position {err.start}, a lone "
            "surrogate that is not valid Unicode and has no UTF-8 bytes; fix how the "
            "text was read or decoded"
        ) from None
