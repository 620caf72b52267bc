"""Summaries (文本摘要): sentence splitting, lead and oracle extracts, and ROUGE.

The simplest summary of a scientific abstract is its beginning: a *lead* baseline
takes the first sentence (or the first ``n`` characters), with no model at all.
Extractive summarisation picks sentences of the document; the *oracle* picks the one
sentence that scores best against the reference, an upper bound for any method that
copies one sentence.

Scores use ROUGE (Lin, 2004) from Google's ``rouge-score`` package, the implementation
most papers report: ROUGE-1 and ROUGE-2 count shared words and word pairs, ROUGE-L the
longest common subsequence, each as an F-score of precision and recall. Its default
tokenizer lower-cases and keeps only ``[a-z0-9]`` runs, so it deletes every Chinese
character; for Chinese the scorer is given :class:`CharTokenizer`, one token per
character (the usual choice for Chinese ROUGE, which needs no word segmenter).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rouge_score import rouge_scorer

from ..checks import check_choice, check_int, describe

__all__ = [
    "LANGUAGES",
    "ROUGE_TYPES",
    "CharTokenizer",
    "lead",
    "oracle_sentence",
    "rouge",
    "scorer",
    "split_sentences",
]

LANGUAGES = ("en", "zh")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

# English: a full stop, ! or ? followed by a space and then a capital letter or digit,
# so that "e.g. this" or "Fig. 3" mostly stays whole. Chinese: 。！？；, and an ASCII
# full stop or semicolon that is not inside a number (CSL's abstracts use both scripts).
_EN_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_ABBREVIATIONS = {"fig.", "figs.", "eq.", "eqs.", "sec.", "e.g.", "i.e.", "al.", "vs."}
_ZH_END = re.compile(r"(?<=[。！？；!?;])|(?<=(?<!\d)\.)(?!\d)")


class CharTokenizer:
    """A ``rouge-score`` tokenizer for Chinese: every non-space character is a token.

    Latin letters and digits in Chinese text (SOS, Lyapunov, 2019) stay in one token
    per run, lower-cased, as the default tokenizer would keep them.
    """

    _TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``: characters, and runs of ASCII letters or digits."""
        return self._TOKEN.findall(text.lower())


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """The sentences of ``text`` (``lang``: ``"en"`` or ``"zh"``), stripped."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {describe(text)}")
    check_choice("lang", lang, LANGUAGES)
    if lang == "zh":
        return [s.strip() for s in _ZH_END.split(text) if s.strip()]
    sentences: list[str] = []
    for piece in _EN_END.split(text):
        words = sentences[-1].split() if sentences else []
        if words and words[-1].lower() in _ABBREVIATIONS:
            sentences[-1] += " " + piece  # "Fig. 3" or "et al. (2019)" goes on
        elif piece.strip():
            sentences.append(piece.strip())
    return sentences


def lead(text: str, lang: str = "en", sentences: int = 1) -> str:
    """The first ``sentences`` sentences of ``text``, joined as they were written."""
    check_int("sentences", sentences, minimum=1)
    joiner = " " if lang == "en" else ""
    return joiner.join(split_sentences(text, lang)[:sentences])


def scorer(lang: str = "en") -> rouge_scorer.RougeScorer:
    """A ``RougeScorer`` for ROUGE-1/2/L: Porter stemming for English, characters for
    Chinese (see the module docstring)."""
    check_choice("lang", lang, LANGUAGES)
    if lang == "en":
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CharTokenizer())


def rouge(
    predictions: Sequence[str], references: Sequence[str], lang: str = "en"
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-scores, on a 0-100 scale, of ``predictions`` against one
    reference each (the convention of the SciTLDR and CSL papers' tables)."""
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("predictions and references must be lists of strings")
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"need as many references as predictions (at least one), got "
            f"{len(predictions)} predictions and {len(references)} references"
        )
    score = scorer(lang)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        result = score.score(reference, prediction)  # (target, prediction)
        for name in ROUGE_TYPES:
            totals[name] += result[name].fmeasure
    return {name: 100 * total / len(predictions) for name, total in totals.items()}


def oracle_sentence(
    text: str, reference: str, lang: str = "en", rouge_type: str = "rouge2"
) -> str:
    """The sentence of ``text`` with the highest ``rouge_type`` F-score against
    ``reference`` (the first one on ties): the best any one-sentence extract can do."""
    check_choice("rouge_type", rouge_type, ROUGE_TYPES)
    sentences = split_sentences(text, lang)
    if not sentences:
        return ""
    score = scorer(lang)
    scores = [score.score(reference, s)[rouge_type].fmeasure for s in sentences]
    return sentences[max(range(len(sentences)), key=scores.__getitem__)]
