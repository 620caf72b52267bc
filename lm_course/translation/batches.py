"""Sentence pairs as padded id tensors, in batches of sentences of similar length.

A batch is padded to its longest sentence, so a batch that mixes a 3-word and a
30-word sentence spends most of its work on padding. Sorting the pairs by length and
cutting the sorted list into batches of about ``tokens`` target tokens each
(*length-bucketed* batches) keeps padding low; short-sentence batches simply hold more
sentences. Training draws one of these fixed batches at random per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_choice, check_int
from .vocab import Vocab, tokenize_en, tokenize_zh

__all__ = ["PairBatches", "encode_source", "pad_rows"]


def pad_rows(rows: list[list[int]], pad_id: int = 0) -> Tensor:
    """Rows of ids as one ``(len(rows), longest)`` tensor, padded with ``pad_id``."""
    out = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def encode_source(sentences: list[str], vocab: Vocab, max_len: int) -> Tensor:
    """Chinese sentences as ``(batch, src_len)`` ids, cut to ``max_len`` characters.

    An empty sentence becomes a lone ``<unk>``, so that every row has a real token.
    """
    rows = [vocab.encode(tokenize_zh(s))[:max_len] or [vocab.unk_id] for s in sentences]
    return pad_rows(rows, vocab.pad_id)


@dataclass
class PairBatches:
    """Fixed, length-bucketed batches of ``(src, tgt_in, tgt_out)`` for each split.

    Args:
        splits: ``{"train": pairs, "val": pairs}`` of ``(zh, en)`` sentence pairs.
        src_vocab, tgt_vocab: the Chinese and English vocabularies.
        max_len: longest source (characters) and target (words + EOS) kept; longer
            training pairs are dropped, not cut (a cut translation teaches wrong
            endings).
        tokens: about how many target tokens per batch.

    Calling it as ``get_batch(split, generator)`` (what :func:`lm_course.training.train`
    expects) returns one of the split's batches at random: ``src (batch, src_len)``,
    ``tgt_in (batch, tgt_len)`` starting with BOS and ``tgt_out (batch, tgt_len)``
    ending with EOS, padded with ``pad_id`` = 0.
    """

    splits: dict[str, list[tuple[str, str]]]
    src_vocab: Vocab
    tgt_vocab: Vocab
    max_len: int = 48
    tokens: int = 1024

    def __post_init__(self) -> None:
        check_int("max_len", self.max_len, minimum=2)
        check_int("tokens", self.tokens, minimum=1)
        self.batches: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {
            name: self._bucket(pairs) for name, pairs in self.splits.items()
        }

    def _bucket(
        self, pairs: list[tuple[str, str]]
    ) -> list[tuple[Tensor, Tensor, Tensor]]:
        bos, eos = self.tgt_vocab.bos_id, self.tgt_vocab.eos_id
        encoded = []
        for zh, en in pairs:
            src = self.src_vocab.encode(tokenize_zh(zh))
            tgt = self.tgt_vocab.encode(tokenize_en(en))
            if 0 < len(src) <= self.max_len and 0 < len(tgt) < self.max_len:
                encoded.append((src, tgt))
        # Sort by target then source length; ties keep the pairs' (fixed) order.
        encoded.sort(key=lambda p: (len(p[1]), len(p[0])))
        batches, start = [], 0
        while start < len(encoded):
            # Grow the batch while (rows x longest target, EOS included) fits.
            stop = start + 1
            while (
                stop < len(encoded)
                and (stop + 1 - start) * (len(encoded[stop][1]) + 1) <= self.tokens
            ):
                stop += 1
            chunk = encoded[start:stop]
            src = pad_rows([s for s, _ in chunk])
            tgt_in = pad_rows([[bos] + t for _, t in chunk])
            tgt_out = pad_rows([t + [eos] for _, t in chunk])
            batches.append((src, tgt_in, tgt_out))
            start = stop
        return batches

    def __call__(self, split: str, generator: torch.Generator) -> tuple[Tensor, ...]:
        check_choice("split", split, tuple(self.batches))
        choices = self.batches[split]
        index = int(torch.randint(len(choices), (1,), generator=generator))
        return choices[index]

    def pairs(self, split: str) -> int:
        """How many sentence pairs of ``split`` the batches hold."""
        return sum(b[0].size(0) for b in self.batches[split])
