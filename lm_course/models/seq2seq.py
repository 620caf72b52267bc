"""An encoder-decoder Transformer for translation.

"Je ne parle pas français" -> "I do not speak French" (article 002, section 4.3).

The encoder reads the whole source sentence with bidirectional attention. The decoder is
a causal language model over the target sentence that, in every layer, also attends to
the encoder's output (*cross-attention*): its queries come from the target, its keys and
values from the source. Training uses *teacher forcing*: the decoder gets the reference
translation shifted right (``tgt_in = [BOS] y_1 .. y_{n-1}``) and predicts
``tgt_out = y_1 .. y_n [EOS]`` at every position in parallel. At inference
:func:`greedy_decode` feeds back its own predictions one token at a time.

Padding is hidden on both sides: source padding from every cross-attention query, target
padding from the decoder's self-attention, and padded target positions from the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lm_course.attention import BACKENDS, causal_mask, check_heads, padding_mask
from lm_course.checks import (
    FromDict,
    check_bool,
    check_choice,
    check_hidden,
    check_int,
    check_mask,
    check_number,
    check_targets,
    check_token_ids,
    describe,
)
from lm_course.models.blocks import Block, check_once, init_weights
from lm_course.positional import SinusoidalPositionalEncoding

__all__ = ["Seq2SeqConfig", "EncoderDecoder", "greedy_decode"]


@dataclass
class Seq2SeqConfig(FromDict):
    """Hyper-parameters of :class:`EncoderDecoder`, checked when the config is created.

    ``n_layer`` encoder layers and ``n_decoder_layer`` (default: ``n_layer``) decoder
    layers; ``max_len`` bounds both the source and the target length; ``pad_id`` is the
    padding id of both vocabularies. ``tie_weights`` shares the target embedding with
    the output layer.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    max_len: int = 128
    n_layer: int = 3
    n_decoder_layer: int | None = None
    n_head: int = 4
    d_model: int = 128
    d_ff: int | None = None
    dropout: float = 0.1
    bias: bool = True
    attention: str = "sdpa"
    pad_id: int = 0
    tie_weights: bool = True

    def __post_init__(self) -> None:
        if self.n_decoder_layer is None:
            self.n_decoder_layer = self.n_layer
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        for name in (
            "src_vocab_size", "tgt_vocab_size", "max_len", "n_layer", "n_decoder_layer",
            "n_head", "d_model", "d_ff",
        ):  # fmt: skip
            value = check_int(f"Seq2SeqConfig.{name}", getattr(self, name), minimum=1)
            setattr(self, name, value)
        check_number(
            "Seq2SeqConfig.dropout", self.dropout, minimum=0, maximum=1, strict_max=True
        )
        check_bool("Seq2SeqConfig.bias", self.bias)
        check_bool("Seq2SeqConfig.tie_weights", self.tie_weights)
        check_choice("Seq2SeqConfig.attention", self.attention, BACKENDS)
        smallest = min(self.src_vocab_size, self.tgt_vocab_size)
        hint = " (an id valid in both vocabularies)"
        self.pad_id = check_int(
            "Seq2SeqConfig.pad_id",
            self.pad_id,
            minimum=0,
            maximum=smallest - 1,
            hint=hint,
        )
        check_heads(self.d_model, self.n_head)
        if self.d_model % 2:
            raise ValueError(
                f"Seq2SeqConfig.d_model must be even (sinusoidal positions), got "
                f"{self.d_model}"
            )


class EncoderDecoder(nn.Module):
    """Transformer encoder-decoder with sinusoidal positions and pre-LN blocks.

    ``forward(src (batch, src_len), tgt_in (batch, tgt_len), tgt_out=None,
    src_mask=None) -> (logits (batch, tgt_len, tgt_vocab_size), loss)``.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(
                f"config must be a Seq2SeqConfig, got {type(config).__name__}"
            )
        self.config = c = config
        self.src_emb = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_emb = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.pos = SinusoidalPositionalEncoding(c.d_model, c.max_len)
        self.encoder = nn.ModuleList(
            Block(c.d_model, c.n_head, c.d_ff, c.dropout, c.bias, c.attention)
            for _ in range(c.n_layer)
        )
        self.enc_ln = nn.LayerNorm(c.d_model, bias=c.bias)
        self.decoder = nn.ModuleList(
            Block(
                c.d_model,
                c.n_head,
                c.d_ff,
                c.dropout,
                c.bias,
                c.attention,
                cross_attention=True,
            )
            for _ in range(c.n_decoder_layer)
        )
        self.dec_ln = nn.LayerNorm(c.d_model, bias=c.bias)
        self.out = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        init_weights(self, c.n_layer + c.n_decoder_layer)
        # Vaswani et al. multiply embeddings by sqrt(d_model); with std d_model^-0.5 the
        # scaled embeddings have unit variance, the same scale as the sinusoidal table.
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=c.d_model**-0.5)
        if c.tie_weights:
            self.out.weight = self.tgt_emb.weight
        check_once(self)

    # ------------------------------------------------------------------ public calls

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Encoder output ("memory") ``(batch, src_len, d_model)``.

        ``src_mask``: lengths ``(batch,)`` or a keep mask ``(batch, src_len)`` (True =
        real token); by default every ``pad_id`` in ``src`` is padding.
        """
        return self._encode(src, self._check_source(src, src_mask))

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Next-token logits ``(batch, tgt_len, tgt_vocab_size)`` for the target prefix.

        ``memory`` ``(batch, src_len, d_model)`` comes from :meth:`encode`; ``src_mask``
        is the boolean ``(batch, 1, 1, src_len)`` mask of its real tokens.
        """
        self._check_target("tgt_in", tgt_in, batch=memory.size(0))
        check_hidden(memory, self.config.d_model, self.out.weight.dtype, "memory")
        shape = (tgt_in.size(0), self.config.n_head, tgt_in.size(1), memory.size(1))
        check_mask(src_mask, shape, "src_mask")
        return self._decode(tgt_in, memory, src_mask)

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor | None = None,
        src_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits ``(batch, tgt_len, tgt_vocab_size)`` and the loss.

        Args:
            src: source ids ``(batch, src_len)``.
            tgt_in: decoder input ``(batch, tgt_len)``, starting with BOS.
            tgt_out: what to predict ``(batch, tgt_len)``, ending with EOS; ``pad_id``
                and ``-100`` positions are left out of the loss.
            src_mask: source lengths ``(batch,)`` or keep mask ``(batch, src_len)``.
        """
        mask = self._check_source(src, src_mask)
        self._check_target("tgt_in", tgt_in, batch=src.size(0))
        if tgt_out is not None:
            size = self.config.tgt_vocab_size
            check_targets(tgt_out, tuple(tgt_in.shape), size, "tgt_out")
        logits = self._decode(tgt_in, self._encode(src, mask), mask)
        loss = None
        if tgt_out is not None:
            targets = tgt_out.masked_fill(tgt_out == self.config.pad_id, -100)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=-100,
            )
        return logits, loss

    # ------------------------------------------------------------------ the model

    def _embed(self, emb: nn.Embedding, idx: Tensor) -> Tensor:
        x = self.pos(emb(idx) * math.sqrt(self.config.d_model))
        if self.config.dropout > 0.0:
            x = F.dropout(x, p=self.config.dropout, training=self.training)
        return x

    def _encode(self, src: Tensor, mask: Tensor) -> Tensor:
        x = self._embed(self.src_emb, src)
        for block in self.encoder:
            x = block(x, mask=mask)
        return self.enc_ln(x)

    def _decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        t = tgt_in.size(1)
        # Causal AND not padding: (t, t) & (batch, 1, 1, t) -> (batch, 1, t, t).
        self_mask = causal_mask(t, device=tgt_in.device) & padding_mask(
            tgt_in != self.config.pad_id
        )
        x = self._embed(self.tgt_emb, tgt_in)
        for block in self.decoder:
            x = block(x, mask=self_mask, memory=memory, memory_mask=src_mask)
        return self.out(self.dec_ln(x))

    # ------------------------------------------------------------------ checks

    def _check_source(self, src: Tensor, src_mask: Tensor | None) -> Tensor:
        """Check ``src`` and its mask; returns the mask ``(batch, 1, 1, src_len)``."""
        c = self.config
        check_token_ids(src, c.src_vocab_size, "src", device=self.out.weight.device)
        self._check_len("src", src)
        if src_mask is None:
            return padding_mask(src != c.pad_id)
        if not isinstance(src_mask, Tensor) or src_mask.shape not in (
            src.shape,
            src.shape[:1],
        ):
            raise ValueError(
                f"src_mask must be lengths (batch,) = ({src.size(0)},) or a keep mask "
                f"shaped like src {tuple(src.shape)}, got {describe(src_mask)}"
            )
        if src_mask.dim() == 1:  # lengths
            return padding_mask(src_mask, max_len=src.size(1))
        return padding_mask(src_mask)

    def _check_target(self, name: str, tgt: Tensor, batch: int) -> None:
        device = self.out.weight.device
        check_token_ids(tgt, self.config.tgt_vocab_size, name, device=device)
        self._check_len(name, tgt)
        if tgt.size(0) != batch:
            raise ValueError(
                f"{name} has {tgt.size(0)} rows but the source has {batch}; give one "
                "target row per source row"
            )

    def _check_len(self, name: str, idx: Tensor) -> None:
        if idx.size(1) > self.config.max_len:
            raise ValueError(
                f"{name} has {idx.size(1)} tokens, more than "
                f"max_len={self.config.max_len}; truncate it or build the model "
                "with a larger max_len"
            )


@torch.no_grad()
def greedy_decode(
    model: EncoderDecoder,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    max_len: int,
    src_mask: Tensor | None = None,
) -> Tensor:
    """Translate by always taking the most likely next token.

    The source is encoded once; the decoder is re-run on the growing prefix at each step
    (no cache: simple, and fast enough for sentences).

    Args:
        model: an :class:`EncoderDecoder`.
        src: source ids ``(batch, src_len)``.
        bos_id, eos_id: start and end tokens of the target vocabulary.
        max_len: most tokens to generate per row (EOS included); at most
            ``config.max_len``.
        src_mask: source lengths or keep mask, as in :meth:`EncoderDecoder.forward`.

    Returns:
        ``(batch, n)`` generated ids without BOS, ``n <= max_len``. A row ends with its
        first EOS; the positions after it hold ``config.pad_id``. Decoding stops early
        when every row has produced EOS.
    """
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"model must be an EncoderDecoder, got {type(model).__name__}")
    c = model.config
    check_int(
        "max_len", max_len, minimum=1, maximum=c.max_len, hint=" (config.max_len)"
    )
    check_int("bos_id", bos_id, minimum=0, maximum=c.tgt_vocab_size - 1)
    check_int("eos_id", eos_id, minimum=0, maximum=c.tgt_vocab_size - 1)
    mask = model._check_source(src, src_mask)
    was_training = model.training
    model.eval()
    try:
        memory = model._encode(src, mask)
        tgt = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits = model._decode(tgt, memory, mask)[:, -1]  # (batch, tgt_vocab_size)
            next_id = logits.argmax(dim=-1)
            next_id = next_id.masked_fill(finished, c.pad_id)
            tgt = torch.cat([tgt, next_id[:, None]], dim=1)
            finished |= next_id == eos_id
            if finished.all():
                break
    finally:
        model.train(was_training)
    return tgt[:, 1:]
