"""A word-overlap baseline: no learning, only the words the question shares.

For each question:

1. split the context into sentences (a sentence ends at a word ending in ``.``, ``!``
   or ``?``) and take the sentence that contains the most distinct question words
   (words compared lowercased, punctuation at their edges removed; the earliest
   sentence wins ties);
2. in that sentence, the candidate answers are the runs of consecutive words that are
   *not* question words (the answer is what the question does not already say);
3. answer with the run that starts or ends nearest to a question word in the sentence
   (ties: the longer run, then the earlier), cut to its ``max_words`` words nearest to
   that question word.

The answer is the exact context text from the first to the last chosen word. Chinese
text has no spaces: with ``chars=True`` every character is a word (punctuation marks
end sentences: 。！？).
"""

from __future__ import annotations

import re
import string

from ...checks import check_bool, check_int, describe

__all__ = ["overlap_answer", "words"]

_WORD = re.compile(r"\S+")
_CHAR = re.compile(r"\S")
_STRIP = string.punctuation + "“”‘’–—…，。、；：？！（）《》「」"
_ENDS = (".", "!", "?", "。", "！", "？")


def words(text: str, chars: bool = False) -> list[tuple[int, int, str]]:
    """``(start, end, key)`` of each word (each character, ``chars=True``); ``key`` is
    the word lowercased without edge punctuation (``""`` for punctuation alone)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    pattern = _CHAR if check_bool("chars", chars) else _WORD
    return [
        (m.start(), m.end(), m.group().lower().strip(_STRIP))
        for m in pattern.finditer(text)
    ]


def _sentences(tokens: list[tuple[int, int, str]], text: str) -> list[list[int]]:
    """Token indices of each sentence."""
    out: list[list[int]] = [[]]
    for i, (start, end, _) in enumerate(tokens):
        out[-1].append(i)
        if text[start:end].endswith(_ENDS):
            out.append([])
    return [s for s in out if s]


def overlap_answer(
    question: str, context: str, max_words: int = 4, chars: bool = False
) -> str:
    """The baseline's answer to ``question`` from ``context`` (see the module doc)."""
    check_int("max_words", max_words, minimum=1)
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {describe(question)}")
    asked = {key for _, _, key in words(question, chars)} - {""}
    tokens = words(context, chars)
    if not tokens:
        return ""
    sentences = _sentences(tokens, context)
    # the most distinct question words; max() keeps the earliest of equals
    best = max(sentences, key=lambda s: len({tokens[i][2] for i in s} & asked))
    given = [i for i in best if tokens[i][2] in asked]
    runs: list[list[int]] = [[]]
    for i in best:
        if tokens[i][2] in asked or not tokens[i][2]:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(i)
    runs = [run for run in runs if run] or [best]

    def distance(run: list[int]) -> int:
        if not given:
            return 0
        return min(min(abs(run[0] - g), abs(run[-1] - g)) for g in given)

    run = min(runs, key=lambda r: (distance(r), -len(r), r[0]))
    if len(run) > max_words:
        # keep the words nearest the question word the run is next to
        near_end = given and min(abs(run[-1] - g) for g in given) < min(
            abs(run[0] - g) for g in given
        )
        run = run[-max_words:] if near_end else run[:max_words]
    return context[tokens[run[0]][0] : tokens[run[-1]][1]]
