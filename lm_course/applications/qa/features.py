"""(question, context) pairs as encoder inputs that remember where each piece came from.

Extractive question answering (抽取式问答) predicts a *span* (片段) of the context: the
position of its first and last piece. To turn those positions back into text, every
context piece keeps its character offsets in the original context.

SentencePiece cuts text before each space first, so the context is split into words,
each with the spaces before it, and each is encoded on its own: the same pieces as the
whole context gives. When a word's pieces spell it exactly (after the vocabulary's
lowercasing), each piece gets its own characters, without its leading space; otherwise
(an unknown character) every piece of that word gets the whole word, so the mapping is
never wrong, only coarser.

Contexts longer than the model's window are cut into overlapping windows (a sliding
window, stride ``stride`` pieces), each ``eos question eos context-part eos``, as BERT
does for SQuAD (Devlin, 2019). A window that does not hold the whole answer points its
labels at position 0 (the first ``eos``, BERT's ``[CLS]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ...checks import check_int, describe
from ...data.loaders import QAExample
from ...pretraining.vocab import Vocab

__all__ = ["Window", "answer_pieces", "piece_spans", "windows"]

Span = tuple[int, int]
_CHUNK = re.compile(r"\s*(\S+)")
_SPACE = "\u2581"  # SentencePiece's "▁", the mark of a preceding space


def piece_spans(vocab: Vocab, text: str) -> tuple[list[int], list[Span]]:
    """Piece ids of ``text`` and each piece's ``(start, end)`` characters in ``text``.

    ``text[start:end]`` is the piece's own text (lowercased by an uncased vocabulary)
    when the word's pieces spell it; otherwise it is the whole word.
    """
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a Vocab, got {describe(vocab)}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    processor = vocab.tokenizer.processor
    ids: list[int] = []
    spans: list[Span] = []
    for match in _CHUNK.finditer(text):  # a word with the spaces before it
        chunk, start = match.group(), match.start()
        word = (match.start(1), match.end())
        chunk_ids = vocab.encode(chunk)
        surfaces = [processor.id_to_piece(i).replace(_SPACE, " ") for i in chunk_ids]
        normal = vocab.normalize(chunk)
        exact = len(normal) == len(chunk) and "".join(surfaces) == normal
        position = start
        for surface in surfaces:
            text_start = position + len(surface) - len(surface.lstrip())
            position += len(surface)
            if exact and position > text_start:
                spans.append((text_start, position))
            else:  # a bare space piece, or pieces that do not spell the word
                spans.append(word)
        ids.extend(chunk_ids)
    return ids, spans


@dataclass(frozen=True)
class Window:
    """One encoder input: ``eos question eos context-part eos``.

    ``spans[i]`` is the character span of position ``i`` in the context, or None for
    the question and the ``eos`` ids (never part of an answer). ``start`` and ``end``
    are the answer's first and last positions, 0 and 0 when it is not all inside.
    """

    example: int
    ids: list[int]
    spans: list[Span | None]
    start: int
    end: int


def answer_pieces(spans: Sequence[Span], first: int, last: int) -> tuple[int, int]:
    """First and last piece overlapping characters ``[first, last)``; ``(-1, -1)``
    when none does (an empty or misplaced answer)."""
    inside = [i for i, (a, b) in enumerate(spans) if a < last and b > first]
    return (inside[0], inside[-1]) if inside else (-1, -1)


def windows(
    vocab: Vocab,
    examples: Sequence[QAExample],
    max_len: int,
    stride: int,
    max_question: int = 32,
) -> list[Window]:
    """Every example as one or more windows of at most ``max_len`` ids.

    Args:
        vocab: the encoder's vocabulary.
        examples: the questions (:func:`lm_course.data.xquad`); the first answer
            labels the windows.
        max_len: ids per window, the three ``eos`` included (the encoder's max_len).
        stride: context pieces between the starts of consecutive windows.
        max_question: question pieces kept (the first ones).

    Returns:
        The windows, in the order of ``examples``.
    """
    check_int("max_len", max_len, minimum=8)
    check_int("max_question", max_question, minimum=1)
    room_min = max_len - max_question - 3
    if room_min < 1:
        raise ValueError(
            f"max_len must leave room for context after max_question={max_question} "
            f"question pieces and 3 eos ids, got max_len={max_len}"
        )
    check_int("stride", stride, minimum=1, maximum=room_min)
    out: list[Window] = []
    contexts: dict[str, tuple[list[int], list[Span]]] = {}
    for index, example in enumerate(examples):
        if not isinstance(example, QAExample):
            raise TypeError(
                f"examples[{index}] must be a QAExample, got {describe(example)}"
            )
        if example.context not in contexts:  # a paragraph has several questions
            contexts[example.context] = piece_spans(vocab, example.context)
        ids, spans = contexts[example.context]
        question = vocab.encode(example.question)[:max_question]
        head: list[int] = [vocab.eos, *question, vocab.eos]
        room = max_len - len(head) - 1
        first, last = -1, -1
        if example.answers:
            begin_char = example.answer_starts[0]
            first, last = answer_pieces(
                spans, begin_char, begin_char + len(example.answers[0])
            )
        begin = 0
        while True:
            end = min(begin + room, len(ids))
            label = (0, 0)
            if first >= begin and 0 <= last < end:  # the whole answer is inside
                label = (len(head) + first - begin, len(head) + last - begin)
            out.append(
                Window(
                    example=index,
                    ids=head + ids[begin:end] + [vocab.eos],
                    spans=[None] * len(head) + list(spans[begin:end]) + [None],
                    start=label[0],
                    end=label[1],
                )
            )
            if end >= len(ids):
                break
            begin += stride
    return out
