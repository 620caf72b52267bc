"""A SentencePiece vocabulary with the special tokens pretraining and fine-tuning use.

SentencePiece gives every piece of text an id; the models need a few ids that are not
text at all:

* ``eos`` -- the boundary between documents in a packed stream (BERT's ``[SEP]``). A
  single sentence is encoded ``eos pieces eos``, just as every document of the packed
  stream is preceded and followed by one, so fine-tuning inputs look like pretraining
  text; its first vector plays the part of BERT's ``[CLS]``;
* ``bos`` -- SentencePiece's ``<s>``; kept, but the course's models never see it;
* ``pad`` -- filler that makes sentences of different lengths one rectangle;
* ``mask`` -- BERT's ``[MASK]``, the blank masked language modelling asks to fill.

SentencePiece already reserves ``<s>`` and ``</s>`` (ids 1 and 2, never produced by
``encode``), which serve as ``bos`` and ``eos``; ``pad`` and ``mask`` get the two ids
after the last piece, so a model's embedding table has ``len(vocab)`` =
``tokenizer.vocab_size + 2`` rows.

The course's vocabulary is *uncased* (like ``bert-base-uncased``): :meth:`Vocab.encode`
lowercases the text first, since the movie-review sentences the course fine-tunes on
are all lowercase and a small vocabulary should not spend pieces on "The" and "the".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from ..checks import check_bool, check_int, describe
from ..tokenizers import SentencePieceTokenizer
from ..tokenizers.ids import as_id_list

__all__ = ["Vocab"]


class Vocab:
    """Encode text to ids and back, with ``bos``, ``eos``, ``pad`` and ``mask`` ids.

    Args:
        tokenizer: a trained :class:`~lm_course.tokenizers.SentencePieceTokenizer`.
        lowercase: lowercase every text before encoding (an uncased model).

    Example:
        >>> vocab = Vocab.train(["a tiny text", "another one"], 40)  # doctest: +SKIP
        >>> ids, keep = vocab.batch(["a tiny text", "one"], max_len=8)  # doctest: +SKIP
    """

    def __init__(self, tokenizer: SentencePieceTokenizer, *, lowercase: bool = True):
        if not isinstance(tokenizer, SentencePieceTokenizer):
            raise TypeError(
                f"tokenizer must be a SentencePieceTokenizer, got {describe(tokenizer)}"
            )
        self.tokenizer = tokenizer
        self.lowercase = check_bool("lowercase", lowercase)
        processor = tokenizer.processor
        self.bos, self.eos = processor.bos_id(), processor.eos_id()
        self.pad = tokenizer.vocab_size
        self.mask = tokenizer.vocab_size + 1

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        lowercase: bool = True,
        model_type: str = "unigram",
    ) -> Vocab:
        """Train a SentencePiece model of ``vocab_size`` pieces on ``texts``.

        ``len(vocab)`` is then ``vocab_size + 2`` (``pad`` and ``mask``).
        """
        check_bool("lowercase", lowercase)
        texts = [text.lower() if lowercase else text for text in texts]
        tokenizer = SentencePieceTokenizer.train(texts, vocab_size, model_type)
        return cls(tokenizer, lowercase=lowercase)

    def __len__(self) -> int:
        """Number of ids a model's embedding needs: the pieces, ``pad`` and ``mask``."""
        return self.tokenizer.vocab_size + 2

    @property
    def special_ids(self) -> tuple[int, ...]:
        """The ids that stand for no text: ``(bos, eos, pad, mask)``."""
        return (self.bos, self.eos, self.pad, self.mask)

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it (lowercased for an uncased vocabulary)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {describe(text)}")
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text`` (no special ids)."""
        return self.tokenizer.encode(self.normalize(text))

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """Text of ``ids`` ``(seq,)``; special ids are dropped."""
        kept = [i for i in as_id_list(ids, len(self)) if i not in self.special_ids]
        return self.tokenizer.decode(kept)

    def batch(
        self, texts: Sequence[str], max_len: int, *, edges: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Encode sentences into one padded batch.

        Each row is ``eos pieces eos`` (``edges=False``: the pieces alone) cut to
        ``max_len`` ids (the last pieces are dropped; the closing ``eos`` stays), then
        padded on the right with ``pad``.

        Returns:
            ``(ids, keep)``: ``ids`` ``(batch, seq)`` long with ``seq`` the longest row;
            ``keep`` ``(batch, seq)`` bool, True at real tokens, False at padding.
        """
        return self.pad_rows([self.encode(t) for t in texts], max_len, edges=edges)

    def pad_rows(
        self, rows: Sequence[Sequence[int]], max_len: int, *, edges: bool = True
    ) -> tuple[Tensor, Tensor]:
        """:meth:`batch` for rows already encoded (lists of piece ids)."""
        check_bool("edges", edges)
        check_int("max_len", max_len, minimum=3 if edges else 1)
        if len(rows) == 0:
            raise ValueError("rows is empty: a batch needs at least one row")
        ends = [self.eos] if edges else []
        room = max_len - 2 * len(ends)
        full = [ends + list(row[:room]) + ends for row in rows]
        width = max(len(row) for row in full)
        ids = torch.full((len(full), width), self.pad, dtype=torch.long)
        for i, row in enumerate(full):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, ids != self.pad

    def to_bytes(self) -> bytes:
        """The SentencePiece model (rebuild with ``Vocab.from_bytes``)."""
        return self.tokenizer.model_proto

    @classmethod
    def from_bytes(cls, model_proto: bytes, *, lowercase: bool = True) -> Vocab:
        """A vocabulary from the bytes of a SentencePiece ``.model`` file."""
        return cls(SentencePieceTokenizer(model_proto), lowercase=lowercase)

    def __repr__(self) -> str:
        case = "uncased" if self.lowercase else "cased"
        return f"Vocab({self.tokenizer.vocab_size} pieces + pad, mask; {case})"
