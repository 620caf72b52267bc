"""Extractive question answering (抽取式问答), SQuAD-style (Rajpurkar, 2016).

* :mod:`.features` -- (question, context) as ``eos question eos context eos`` windows
  of SentencePiece ids, each context piece with its character offsets (sliding windows
  for long contexts);
* :mod:`.head` -- the span-prediction head (start and end logits) on the encoder, its
  loss and training batches;
* :mod:`.decode` -- the best span (start <= end, at most ``max_answer`` pieces) and its
  text;
* :mod:`.baseline` -- the word-overlap baseline;
* :mod:`.scoring` -- exact match and F1 (official SQuAD v1.1, via torchmetrics);
* :mod:`.splits` -- train/test split by article.

The fine-tuned models are the zoo recipes ``ch06-qa-en`` and its variants
(:mod:`lm_course.zoo.recipes.ch06_qa`).
"""

from .baseline import overlap_answer, words
from .decode import best_spans, predict
from .features import Window, answer_pieces, piece_spans, windows
from .head import SpanBatches, SpanHead, SpanModel, pad_windows, span_loss
from .scoring import spaced, squad_scores
from .splits import split_by_article

__all__ = [
    "SpanBatches",
    "SpanHead",
    "SpanModel",
    "Window",
    "answer_pieces",
    "best_spans",
    "overlap_answer",
    "pad_windows",
    "piece_spans",
    "predict",
    "spaced",
    "span_loss",
    "split_by_article",
    "squad_scores",
    "windows",
    "words",
]
