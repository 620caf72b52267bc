"""Pretraining objectives on unlabelled text, and what they need.

* :mod:`.vocab` -- a SentencePiece vocabulary with ``eos``, ``pad`` and ``mask`` ids;
* :mod:`.streams` -- documents packed into one stream of ids;
* :mod:`.mlm` -- masked language modelling (BERT's 80/10/10 masking, its loss);
* :mod:`.nsp` -- next-sentence and sentence-order prediction pairs;
* :mod:`.bpc` -- bits per character, the unit that compares tokenizers.

Causal language modelling (GPT) needs nothing new: ``LMBatches`` over a packed stream
and the GPT's own loss (:mod:`lm_course.training`, :mod:`lm_course.models.gpt`).
"""

from .bpc import bits_per_character, stream_nll
from .mlm import IGNORE_INDEX, MLMBatches, mask_tokens, mlm_loss
from .nsp import NEGATIVES, SentencePair, make_pairs, pair_batch, segments
from .streams import pack_documents
from .vocab import Vocab

__all__ = [
    "IGNORE_INDEX",
    "MLMBatches",
    "NEGATIVES",
    "SentencePair",
    "Vocab",
    "bits_per_character",
    "make_pairs",
    "mask_tokens",
    "mlm_loss",
    "pack_documents",
    "pair_batch",
    "segments",
    "stream_nll",
]
