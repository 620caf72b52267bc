"""The unlabelled English corpus the course pretrains on, with its held-out part.

Pretraining needs plain text, no labels. The course assembles it from four of its data
sets, taking from each only the part that no later evaluation uses:

* ``movie_reviews``: the sentences of the sentiment *training* split
  (:func:`~lm_course.data.sentence_polarity`; their labels are dropped). The test split
  is what fine-tuning is scored on, so it never appears here; the validation split is
  the held-out text.
* ``shakespeare``: Tiny Shakespeare, cut into speeches (blocks separated by a blank
  line). The last 10 % of the characters are held out, the same cut as the
  character-level models of the earlier chapters.
* ``tatoeba``: the English side of the Tatoeba training pairs; the validation pairs are
  held out.
* ``scitldr``: SciTLDR abstracts, split 80/10/10 with the same seeded split as every
  other data set; the test abstracts are left for the summaries of chapter 6.

Every source's held-out documents are disjoint from its training documents, so a loss
measured on them is a loss on text the model has never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..checks import check_choice, check_int
from .loaders import scitldr, sentence_polarity, tatoeba_cmn_eng, tiny_shakespeare
from .splits import split_examples

__all__ = ["CORPUS_FILES", "SOURCES", "Corpus", "english_corpus", "scitldr_splits"]

SOURCES = ("movie_reviews", "shakespeare", "tatoeba", "scitldr")
SPLITS = ("train", "heldout")
# The registry paths of the files the corpus reads (for a recipe's ``data=``).
CORPUS_FILES = (
    "sentence_polarity/sentence_polarity.zip",
    "tinyshakespeare/input.txt",
    "tatoeba_cmn_eng/cmn.txt",
    "scitldr/SciTLDR-A_dev.jsonl",
)
SHAKESPEARE_HELD_OUT = 0.1


@dataclass(frozen=True)
class Corpus:
    """Documents (strings) per source, for training and held out.

    ``train["tatoeba"]`` is a list of English sentences, ``heldout["shakespeare"]`` a
    list of speeches, and so on for every name in :data:`SOURCES`.
    """

    train: dict[str, list[str]] = field(repr=False)
    heldout: dict[str, list[str]] = field(repr=False)

    def documents(self, split: str = "train") -> list[str]:
        """Every document of ``split`` (``"train"`` or ``"heldout"``), by source."""
        check_choice("split", split, SPLITS)
        part = self.train if split == "train" else self.heldout
        return [doc for source in SOURCES for doc in part[source]]

    def characters(self, split: str = "train") -> dict[str, int]:
        """Characters per source in ``split``."""
        check_choice("split", split, SPLITS)
        part = self.train if split == "train" else self.heldout
        return {source: sum(map(len, part[source])) for source in SOURCES}

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{source}={len(self.train[source])}+{len(self.heldout[source])}"
            for source in SOURCES
        )
        return f"Corpus(documents train+heldout: {sizes})"


def _speeches(text: str) -> list[str]:
    """Blocks of a play separated by a blank line (a speaker's name and lines)."""
    return [block.strip("\n") for block in text.split("\n\n") if block.strip()]


def scitldr_splits(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """SciTLDR abstracts as (train, val, test) with the course's seeded 80/10/10 split.

    The corpus pretrains on ``train`` and holds out ``val``; ``test`` is kept for
    evaluating summaries.
    """
    splits = split_examples([ex.document for ex in scitldr()], seed=seed)
    return splits.train, splits.val, splits.test


def english_corpus(seed: int = 0) -> Corpus:
    """The pretraining corpus (see the module docstring); ``seed`` picks the splits.

    Returns:
        A :class:`Corpus` of about 3.1 million training characters and 0.4 million
        held-out ones (with ``seed=0``).
    """
    check_int("seed", seed, minimum=0)
    reviews = sentence_polarity(seed=seed)
    text = tiny_shakespeare()
    cut = len(text) - int(len(text) * SHAKESPEARE_HELD_OUT)
    pairs = tatoeba_cmn_eng(seed=seed)
    abstracts_train, abstracts_val, _ = scitldr_splits(seed)
    train = {
        "movie_reviews": [ex.text for ex in reviews.train],
        "shakespeare": _speeches(text[:cut]),
        "tatoeba": [pair.en for pair in pairs.train],
        "scitldr": abstracts_train,
    }
    heldout = {
        "movie_reviews": [ex.text for ex in reviews.val],
        "shakespeare": _speeches(text[cut:]),
        "tatoeba": [pair.en for pair in pairs.val],
        "scitldr": abstracts_val,
    }
    return Corpus(train=train, heldout=heldout)
