"""A thin wrapper over the SentencePiece library (BPE and unigram tokenizers).

The course writes BPE by hand in :mod:`lm_course.tokenizers.bpe` to show how it works;
real projects use a library such as SentencePiece (used by T5, LLaMA and many Chinese
models), which is fast, handles any script, and also offers the *unigram* algorithm.

This wrapper trains from a string held in memory and keeps the model in memory too (no
files unless you ask for them), and chooses options so that the course's texts come back
exactly from ``decode(encode(text))``:

* ``normalization_rule_name="identity"``: SentencePiece normally applies NFKC
  normalisation, which turns, e.g., the Chinese full-width comma "，" into ",". We keep
  text as it is.
* ``remove_extra_whitespaces=False``: keep double spaces and leading/trailing spaces.
* ``add_dummy_prefix=False``: by default SentencePiece adds a space before each training
  line; the course's texts have many lines per sample, so a word at the start of a line
  is not preceded by a space and should not be learned as if it were.
* ``"\\n"`` is a user-defined symbol: SentencePiece trains on one line at a time and
  would otherwise never see a line break, which then could not be encoded.
* ``num_threads=1``: training with more threads can give different pieces from run to
  run.

A character never seen in training becomes the unknown piece (id 0, decoded as " ⁇ "),
unless you pass ``byte_fallback=True``, which spells such characters as UTF-8 bytes
(that needs 256 byte pieces, so a vocab_size well above 256).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm
import torch

from lm_course.checks import check_bool, check_choice, check_int, check_number, describe
from lm_course.tokenizers.ids import as_id_list

MODEL_TYPES = ("bpe", "unigram")


class SentencePieceTokenizer:
    """Encode and decode with a trained SentencePiece model.

    Build one with :meth:`train` or :meth:`load`; the constructor takes the serialized
    model (the bytes of a ``.model`` file).

    Example:
        >>> tok = SentencePieceTokenizer.train(text, vocab_size=500)  # doctest: +SKIP
        >>> tok.pieces("Before we proceed")  # doctest: +SKIP
        ['Before', '▁we', '▁pro', 'ceed']
    """

    def __init__(self, model_proto: bytes) -> None:
        if not isinstance(model_proto, bytes):
            raise TypeError(
                f"model_proto must be the bytes of a .model file, got "
                f"{type(model_proto).__name__}; to read a file use "
                "SentencePieceTokenizer.load"
            )
        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(
        cls,
        text: str | Iterable[str],
        vocab_size: int,
        model_type: str = "bpe",
        *,
        model_dir: str | Path | None = None,
        prefix: str = "spm",
        character_coverage: float = 1.0,
        byte_fallback: bool = False,
    ) -> SentencePieceTokenizer:
        """Train a SentencePiece model on ``text`` and return the tokenizer.

        Args:
            text: the training text, as one string or an iterable of strings (each is
                split into lines, which is how SentencePiece reads its input).
            vocab_size: the number of pieces, special pieces (``<unk>``, ``<s>``,
                ``</s>``) and ``"\\n"`` included.
            model_type: ``"bpe"`` or ``"unigram"``.
            model_dir: when given, also write ``{model_dir}/{prefix}.model`` (load it
                back with :meth:`load`).
            prefix: file name stem used with ``model_dir``.
            character_coverage: share of the characters of the text that get their own
                piece; the rest become unknown. 1.0 keeps every character.
            byte_fallback: spell unseen characters as UTF-8 byte pieces instead of
                unknown.

        Training is deterministic: the same text and options give the same model.
        """
        check_choice("model_type", model_type, MODEL_TYPES)
        check_int(
            "vocab_size",
            vocab_size,
            minimum=5,
            hint="; the special pieces <unk>, <s>, </s> and the line break take 4 ids; "
            "pass at least a few hundred",
        )
        check_number(
            "character_coverage",
            character_coverage,
            minimum=0,
            maximum=1,
            strict_min=True,
            hint=" (1.0 keeps every character, 0.9995 is usual for Chinese)",
        )
        check_bool("byte_fallback", byte_fallback)
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(
                f"prefix must be a non-empty string, got {describe(prefix)}"
            )
        lines = _lines(text)
        # SentencePiece silently skips lines longer than max_sentence_length bytes (4192
        # by default); a chapter of a Chinese classic is longer, so allow the longest
        # line.
        longest = max((len(line.encode("utf-8")) for line in lines), default=0)
        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=writer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                byte_fallback=byte_fallback,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                add_dummy_prefix=False,
                user_defined_symbols=["\n"],
                max_sentence_length=max(4192, longest + 1),
                num_threads=1,
                minloglevel=2,  # errors only: the trainer's progress log is very long
            )
        except RuntimeError as err:
            message = str(err)
            limit = re.search(r"value <= (\d+)", message)
            if "Vocabulary size too high" in message and limit:
                raise ValueError(
                    f"vocab_size={vocab_size} is too large for this training text: "
                    f"SentencePiece can make at most {limit.group(1)} pieces from it; "
                    f"pass vocab_size={limit.group(1)} or less, or train on more text"
                ) from None
            if "smaller than required_chars" in message:
                needed = re.search(r"required_chars\. \d+ vs (\d+)", message)
                at_least = f" ({needed.group(1)})" if needed else ""
                raise ValueError(
                    f"vocab_size={vocab_size} is smaller than the number of distinct "
                    f"characters SentencePiece must keep{at_least}; pass a larger "
                    "vocab_size or a lower character_coverage"
                ) from None
            raise
        tok = cls(writer.getvalue())
        if model_dir is not None:
            Path(model_dir).mkdir(parents=True, exist_ok=True)
            tok.save(Path(model_dir) / f"{prefix}.model")
        return tok

    @property
    def vocab_size(self) -> int:
        """Number of pieces (ids run from 0 to ``vocab_size - 1``)."""
        return self.processor.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Turn ``text`` into piece ids (``""`` gives ``[]``)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.processor.encode(text)

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """Turn piece ids back into text. Shape: ``ids`` is ``(seq,)``."""
        ids = as_id_list(ids, self.vocab_size)
        return self.processor.decode(ids)

    def pieces(self, text: str) -> list[str]:
        """Show how ``text`` is cut, one string per piece ("▁" stands for a space)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.processor.encode(text, out_type=str)

    def save(self, path: str | Path) -> None:
        """Write the model to a ``.model`` file (SentencePiece's protobuf format)."""
        Path(path).write_bytes(self.model_proto)

    @classmethod
    def load(cls, path: str | Path) -> SentencePieceTokenizer:
        """Read a ``.model`` file written by :meth:`save` or by SentencePiece itself."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no SentencePiece model at {path}")
        try:
            return cls(path.read_bytes())
        except RuntimeError as err:
            raise ValueError(
                f"{path} is not a SentencePiece model file ({err}); write one with "
                "SentencePieceTokenizer.save or train with model_dir=..."
            ) from None

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={self.vocab_size})"


def _lines(text: str | Iterable[str]) -> list[str]:
    """The non-empty lines of a string, or of each string of an iterable."""
    if isinstance(text, str):
        text = [text]
    elif not isinstance(text, Iterable):
        raise TypeError(
            f"text must be a str or an iterable of str, got {type(text).__name__}"
        )
    lines = []
    for pos, item in enumerate(text):
        if not isinstance(item, str):
            raise TypeError(f"text[{pos}] is a {type(item).__name__}, not a str")
        lines.extend(line for line in item.split("\n") if line)
    if not lines:
        raise ValueError("text is empty: SentencePiece needs some training text")
    return lines
