"""Tokenizers: characters, a hand-written byte-level BPE, a SentencePiece wrapper."""

from lm_course.tokenizers.bpe import BPETokenizer
from lm_course.tokenizers.char import CharTokenizer
from lm_course.tokenizers.spm import SentencePieceTokenizer

__all__ = ["BPETokenizer", "CharTokenizer", "SentencePieceTokenizer"]
