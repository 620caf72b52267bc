"""Tokens for translation: Chinese characters in, English words out.

* **Source, Chinese, one token per character.** Chinese writes no spaces between
  words, and a character is already a unit of meaning: 3,000 of them cover Tatoeba.
  Splitting into words would need a segmenter and a much larger vocabulary.
* **Target, English, one token per word**, with punctuation and the clitics ``n't``,
  ``'s``, ``'m``, ``'re``, ``'ve``, ``'ll``, ``'d`` as tokens of their own, so "don't",
  "doesn't" and "isn't" share ``n't``. Short Tatoeba sentences have about 7 such
  tokens; a subword vocabulary would make the decoder take more steps per sentence.

A :class:`Vocab` keeps the tokens seen at least ``min_count`` times in training;
anything else becomes ``<unk>``, which training therefore sees too (rare characters are
replaced by it), so an unknown character at translation time is an input the model has
met, not a crash.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..checks import check_int

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "UNK",
    "Vocab",
    "detokenize_en",
    "tokenize_en",
    "tokenize_zh",
]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3 in every vocabulary

_CLITICS = r"'(?:s|m|re|ve|ll|d)\b"
_EN_TOKEN = re.compile(
    rf"\d+(?:[.,:]\d+)*"  # numbers: 3, 3.5, 1,000, 10:30
    rf"|o'clock\b"
    rf"|[^\W\d_]+(?=n't\b)|n't\b"  # do|n't, ca|n't
    rf"|{_CLITICS}"  # Tom|'s, I|'m
    rf"|[^\W\d_]+"  # words (any script)
    rf"|\S",  # any other character on its own
    re.IGNORECASE,
)
_GLUE_LEFT = re.compile(rf"^(?:[.,!?;:%)\]}}]|n't|{_CLITICS})$", re.IGNORECASE)


def tokenize_zh(text: str) -> list[str]:
    """One token per character, spaces dropped: ``"我 会"`` -> ``["我", "会"]``."""
    return [ch for ch in text if not ch.isspace()]


def tokenize_en(text: str) -> list[str]:
    """English words, numbers, punctuation and clitics.

    >>> tokenize_en("I don't speak French.")
    ['I', 'do', "n't", 'speak', 'French', '.']
    """
    return _EN_TOKEN.findall(text)


def detokenize_en(tokens: Iterable[str]) -> str:
    """Join English tokens back into a sentence (the inverse of :func:`tokenize_en`).

    Punctuation and clitics attach to the word before them, an opening bracket to the
    word after it, a hyphen to both, and double quotes alternate between opening and
    closing.

    >>> detokenize_en(['I', 'do', "n't", 'speak', 'French', '.'])
    "I don't speak French."
    """
    out: list[str] = []
    glue_next = True  # no space before the first token
    quote_open = False
    for token in tokens:
        glue = glue_next or bool(_GLUE_LEFT.match(token)) or token == "-"
        glue_next = token in "([{$-"
        if token == '"':
            glue, glue_next = (True, False) if quote_open else (glue, True)
            quote_open = not quote_open
        out.append(token if glue else " " + token)
    return "".join(out)


class Vocab:
    """Tokens <-> ids: four special tokens, then the kept tokens, most frequent first.

    Args:
        tokens: the kept tokens, in id order (after the specials).

    Build one from training sentences with :meth:`build`.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocab tokens must be distinct")

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_count: int = 2) -> Vocab:
        """Keep the tokens seen at least ``min_count`` times, ties in sorted order."""
        check_int("min_count", min_count, minimum=1)
        counts = Counter(t for sentence in sentences for t in sentence)
        kept = sorted((t for t, n in counts.items() if n >= min_count),
                      key=lambda t: (-counts[t], t))  # fmt: skip
        return cls(kept)

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown ones become :attr:`unk_id`."""
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``, stopping at the first EOS; PAD and BOS are left out."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.itos[i])
        return out

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"
