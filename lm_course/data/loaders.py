"""Loaders that turn the fetched files into ready-to-use Python objects."""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass

from .fetch import fetch
from .splits import Splits, split_examples


def tiny_shakespeare() -> str:
    """The whole Tiny Shakespeare text (1,115,394 characters, 65 distinct)."""
    return fetch("tinyshakespeare/input.txt").read_text(encoding="utf-8")


@dataclass(frozen=True)
class LabelledSentence:
    """A movie-review snippet and its polarity (1 = positive, 0 = negative)."""

    text: str
    label: int


def sentence_polarity(seed: int = 0) -> Splits[LabelledSentence]:
    """Movie-review polarity: 10,662 sentences, split 80/10/10 with a fixed seed."""
    with zipfile.ZipFile(fetch("sentence_polarity/sentence_polarity.zip")) as archive:
        examples = [
            LabelledSentence(line.strip(), label)
            for member, label in [("rt-polarity.pos", 1), ("rt-polarity.neg", 0)]
            for line in archive.read(f"sentence_polarity/{member}")
            .decode("utf-8")
            .splitlines()
            if line.strip()
        ]
    return split_examples(examples, seed=seed)


@dataclass(frozen=True)
class SentencePair:
    """An English sentence and its Mandarin translation (Tatoeba)."""

    en: str
    zh: str


def tatoeba_cmn_eng(seed: int = 0) -> Splits[SentencePair]:
    """Tatoeba English-Mandarin pairs (23,610), split 80/10/10 with a fixed seed.

    The third column of the file (the per-pair attribution required by the CC BY
    license) is dropped here; the book's data page credits Tatoeba.
    """
    text = fetch("tatoeba_cmn_eng/cmn.txt").read_text(encoding="utf-8")
    pairs = [SentencePair(*line.split("\t")[:2]) for line in text.splitlines() if line]
    return split_examples(pairs, seed=seed)


@dataclass(frozen=True)
class QAExample:
    """A reading-comprehension question, its context and answer spans (SQuAD)."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]


def _squad_examples(path: str) -> list[QAExample]:
    with open(fetch(path), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    return [
        QAExample(
            id=str(qa["id"]),
            title=article.get("title", ""),
            context=paragraph["context"],
            question=qa["question"],
            answers=tuple(a["text"] for a in qa["answers"]),
            answer_starts=tuple(int(a["answer_start"]) for a in qa["answers"]),
        )
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def xquad(lang: str = "en") -> list[QAExample]:
    """XQuAD questions (1,190 per language); ``lang`` is ``"en"`` or ``"zh"``."""
    if lang not in ("en", "zh"):
        raise ValueError(
            f"lang must be 'en' or 'zh' (the languages the course ships), got {lang!r}"
        )
    return _squad_examples(f"xquad/xquad.{lang}.json")


def cmrc2018() -> list[QAExample]:
    """CMRC 2018 development set: 3,219 Chinese reading-comprehension questions."""
    return _squad_examples("cmrc2018/cmrc2018_dev.json")


CLASSICS = {
    "lunyu": ("chinese_classics/lunyu.json", "paragraphs"),
    "shijing": ("chinese_classics/shijing.json", "content"),
    "tangshi300": ("chinese_classics/tangshi300.json", "paragraphs"),
    "tang": ("chinese_classics/poet.tang.0.json", "paragraphs"),
}


def chinese_classics(name: str = "lunyu") -> list[str]:
    """One text per chapter or poem of a Chinese classic.

    ``name``: ``"lunyu"`` (Analects, 20 chapters, simplified characters), ``"shijing"``
    (Book of Songs, 305 poems, simplified), ``"tangshi300"`` (Three Hundred Tang Poems,
    traditional) or ``"tang"`` (the first 1,000 Complete Tang Poems, traditional).
    """
    if name not in CLASSICS:
        raise ValueError(f"name must be one of {', '.join(CLASSICS)}, got {name!r}")
    path, field = CLASSICS[name]
    with open(fetch(path), encoding="utf-8") as f:
        entries = json.load(f)
    return ["".join(entry[field]) for entry in entries]


@dataclass(frozen=True)
class SummaryExample:
    """A document and its short summary (a title or a one-sentence TLDR)."""

    document: str
    summary: str


def csl_titles(split: str = "dev") -> list[SummaryExample]:
    """CSL: Chinese scientific abstracts and their titles (1,000 per split)."""
    if split not in ("dev", "test"):
        raise ValueError(f"split must be 'dev' or 'test', got {split!r}")
    with open(fetch(f"csl_title/{split}.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        SummaryExample(document=row[1], summary=row[2]) for row in rows if len(row) >= 3
    ]


def scitldr() -> list[SummaryExample]:
    """SciTLDR-A development set: 619 abstracts, each with its first reference TLDR."""
    with open(fetch("scitldr/SciTLDR-A_dev.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [SummaryExample(" ".join(r["source"]), r["target"][0]) for r in records]
