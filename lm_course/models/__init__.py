"""The course's language models, from counting to Transformers.

``NGramModel`` (chapter 1), ``LSTMLanguageModel`` (chapter 3), ``GPT`` (decoder-only),
``TransformerEncoder`` (masked-LM pretraining) and ``EncoderDecoder`` (translation).
"""

from .blocks import MLP, Block
from .encoder import EncoderConfig, SequenceClassifier, TransformerEncoder, mask_tokens
from .gpt import GPT, POSITIONAL_KINDS, GPTConfig, KVCache
from .lstm import LSTMConfig, LSTMLanguageModel
from .ngram import NGramModel
from .seq2seq import EncoderDecoder, Seq2SeqConfig, greedy_decode

__all__ = [
    "GPT",
    "MLP",
    "POSITIONAL_KINDS",
    "Block",
    "EncoderConfig",
    "EncoderDecoder",
    "GPTConfig",
    "KVCache",
    "LSTMConfig",
    "LSTMLanguageModel",
    "NGramModel",
    "Seq2SeqConfig",
    "SequenceClassifier",
    "TransformerEncoder",
    "greedy_decode",
    "mask_tokens",
]
