"""Tatoeba Chinese-English pairs, cleaned and split so that nothing leaks into testing.

Tatoeba repeats itself: 23,610 pairs hold only 22,773 distinct English and 21,810
distinct Chinese sentences, because one sentence often has several translations
("Tom learned French." and "Tom studied French." are both 汤姆学习了法语。). A random
split of the *pairs* would put 汤姆学习了法语。 in training with one translation and in
the test set with the other: the test would reward memory, not translation.

So the split is made over *groups*: two pairs belong to the same group when they share
an English or a Chinese sentence (the connected components of the graph whose nodes are
sentences and whose edges are pairs). Whole groups go to train, validation or test, so
no English and no Chinese sentence of the test set was seen in training.

Tatoeba also mixes simplified (说法语) and traditional (說法語) characters, even within
one sentence's translations. Every Chinese sentence is converted to simplified
characters with ``zhconv`` (the character and phrase tables MediaWiki uses for the
Chinese Wikipedia) before anything else, so 說法語 and 说法语 are one sentence, one
group and one set of characters. The ``translate`` command converts its input the
same way, so a reader may type either script.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from ..checks import check_int, check_number
from ..data import tatoeba_cmn_eng

__all__ = ["TranslationSplits", "group_pairs", "simplify", "tatoeba_splits"]


def simplify(text: str) -> str:
    """Chinese text in simplified characters, NFKC-normalised, stripped.

    NFKC turns full-width letters, digits and punctuation (Ｔｏｍ, １２, ，？！) into
    their ASCII forms; the ideographic full stop 。 has none and stays.

    >>> simplify("我不會說法語。")
    '我不会说法语。'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    # Imported here: loading any recipe imports this module, and only Chinese text
    # needs the conversion tables.
    import zhconv

    return zhconv.convert(unicodedata.normalize("NFKC", text), "zh-cn").strip()


def group_pairs(pairs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split ``(zh, en)`` pairs into groups that share no sentence with each other.

    Two pairs are in one group when they share their Chinese or their English side,
    directly or through other pairs (union-find over the sentences). Groups come out
    in the order of their first pair; the pairs of a group in input order.
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for zh, en in pairs:
        a, b = "zh:" + zh, "en:" + en
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(a)] = root(b)
    groups: dict[str, list[tuple[str, str]]] = {}
    for zh, en in pairs:
        groups.setdefault(root("zh:" + zh), []).append((zh, en))
    return list(groups.values())


@dataclass(frozen=True)
class TranslationSplits:
    """Deduplicated ``(zh, en)`` pairs in three parts that share no sentence.

    ``test_sources`` lists each distinct Chinese test sentence once, and
    ``test_references[i]`` every English translation Tatoeba gives for it (BLEU with
    several references).
    """

    train: list[tuple[str, str]]
    val: list[tuple[str, str]]
    test: list[tuple[str, str]]

    @property
    def test_sources(self) -> list[str]:
        """Distinct Chinese sentences of the test part, in order of first use."""
        return list(dict.fromkeys(zh for zh, _ in self.test))

    @property
    def test_references(self) -> list[list[str]]:
        """For each of :attr:`test_sources`, its English translations."""
        refs: dict[str, list[str]] = {}
        for zh, en in self.test:
            refs.setdefault(zh, []).append(en)
        return list(refs.values())

    def __repr__(self) -> str:
        return (
            f"TranslationSplits(train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)} pairs)"
        )


def tatoeba_splits(
    val_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0
) -> TranslationSplits:
    """Tatoeba Chinese-English, simplified, deduplicated, split by sentence groups.

    Steps: convert the Chinese side to simplified characters (:func:`simplify`); drop
    exact duplicate pairs; group pairs that share a sentence (:func:`group_pairs`);
    shuffle the groups with ``random.Random(seed)``; fill the test part, then the
    validation part, with whole groups until each holds its fraction of the pairs.
    """
    for name, value in (
        ("val_fraction", val_fraction),
        ("test_fraction", test_fraction),
    ):
        check_number(name, value, minimum=0, maximum=0.5)
    check_int("seed", seed, minimum=0)
    raw = tatoeba_cmn_eng(seed=0)  # the loader's own split is ignored: regrouped here
    everything = raw.train + raw.val + raw.test
    # Sorted first: the result must not depend on the loader's shuffle.
    cleaned = sorted({(simplify(p.zh), " ".join(p.en.split())) for p in everything})
    groups = group_pairs(cleaned)
    random.Random(seed).shuffle(groups)
    n_test = round(test_fraction * len(cleaned))
    n_val = round(val_fraction * len(cleaned))
    parts: list[list[tuple[str, str]]] = [[], [], []]
    for group in groups:
        if len(parts[0]) < n_test:
            parts[0].extend(group)
        elif len(parts[1]) < n_val:
            parts[1].extend(group)
        else:
            parts[2].extend(group)
    test, val, train = parts
    return TranslationSplits(train=train, val=val, test=test)
