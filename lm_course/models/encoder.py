"""A bidirectional Transformer encoder pretrained with masked language modelling (BERT).

Unlike the GPT, every token sees every other (non-padding) token, so the model cannot be
trained to predict the next token -- it would simply read it. Masked language modelling
(MLM, article 004) hides about 15 % of the tokens instead and asks the model to recover
them from both sides. :func:`mask_tokens` implements BERT's recipe; the chosen positions
become targets and every other position gets the target ``-100``, which the loss
ignores.

After pretraining, :class:`SequenceClassifier` puts a small head on the encoder for
fine-tuning (sentiment, for example).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lm_course.attention import BACKENDS, check_heads, padding_mask
from lm_course.checks import (
    FromDict,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_targets,
    check_token_ids,
    describe,
)
from lm_course.models.blocks import Block, check_once, init_weights
from lm_course.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
)

__all__ = ["EncoderConfig", "TransformerEncoder", "SequenceClassifier", "mask_tokens"]

IGNORE_INDEX = -100
POSITIONAL_KINDS = ("learned", "sinusoidal")


@dataclass
class EncoderConfig(FromDict):
    """Hyper-parameters of :class:`TransformerEncoder`, checked when created.

    ``max_len`` is the longest input; ``pad_id`` (or ``None``) is the padding token,
    used to build the padding mask when ``forward`` gets no ``attention_mask``.
    """

    vocab_size: int
    max_len: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int | None = None
    dropout: float = 0.1
    bias: bool = True
    attention: str = "sdpa"
    positional: str = "learned"
    pad_id: int | None = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "d_model"):
            value = check_int(f"EncoderConfig.{name}", getattr(self, name), minimum=1)
            setattr(self, name, value)
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        self.d_ff = check_int(
            "EncoderConfig.d_ff", self.d_ff, minimum=1, hint="; None means 4 * d_model"
        )
        check_number(
            "EncoderConfig.dropout", self.dropout, minimum=0, maximum=1, strict_max=True
        )
        check_bool("EncoderConfig.bias", self.bias)
        check_choice("EncoderConfig.attention", self.attention, BACKENDS)
        check_choice("EncoderConfig.positional", self.positional, POSITIONAL_KINDS)
        if self.pad_id is not None:
            self.pad_id = check_int(
                "EncoderConfig.pad_id",
                self.pad_id,
                minimum=0,
                maximum=self.vocab_size - 1,
                hint="; None means no padding",
            )
        check_heads(self.d_model, self.n_head)


class TransformerEncoder(nn.Module):
    """Bidirectional pre-LN Transformer with a masked-LM head tied to the embeddings.

    ``forward(idx (batch, seq), targets=None, attention_mask=None) -> (logits, loss)``
    with logits ``(batch, seq, vocab_size)``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if not isinstance(config, EncoderConfig):
            raise TypeError(
                f"config must be an EncoderConfig, got {type(config).__name__}"
            )
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        if c.positional == "learned":
            self.pos_emb: nn.Module = LearnedPositionalEmbedding(c.d_model, c.max_len)
        else:
            self.pos_emb = SinusoidalPositionalEncoding(c.d_model, c.max_len)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_head, c.d_ff, c.dropout, c.bias, c.attention)
            for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.d_model, bias=c.bias)
        # The MLM head reuses the embedding matrix (tied) plus one bias per token.
        self.mlm_bias = nn.Parameter(torch.zeros(c.vocab_size))
        init_weights(self, c.n_layer)
        check_once(self)

    def encode(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Contextual vectors ``(batch, seq, d_model)`` for token ids ``(batch, seq)``.

        ``attention_mask`` ``(batch, seq)``: 1/True for real tokens, 0/False for
        padding. Without it, positions equal to ``config.pad_id`` are padding.
        """
        return self._encode(idx, self._check(idx, attention_mask))

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """MLM logits ``(batch, seq, vocab_size)`` and the loss over targets not -100.

        Args:
            idx: ``(batch, seq)`` token ids, with some replaced by :func:`mask_tokens`.
            targets: ``(batch, seq)`` original ids at masked positions, ``-100``
                elsewhere.
            attention_mask: ``(batch, seq)`` 1/True = real token, 0/False = padding.
        """
        keep = self._check(idx, attention_mask)
        if targets is not None:
            check_targets(targets, tuple(idx.shape), self.config.vocab_size, "targets")
        hidden = self._encode(idx, keep)
        logits = F.linear(hidden, self.tok_emb.weight, self.mlm_bias)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss

    def _encode(self, idx: Tensor, keep: Tensor | None) -> Tensor:
        """The encoder itself, on checked inputs; ``keep`` ``(batch, seq)`` or None."""
        mask = None if keep is None else padding_mask(keep)  # (batch, 1, 1, seq)
        x = self.pos_emb(self.tok_emb(idx))
        if self.config.dropout > 0.0:
            x = F.dropout(x, p=self.config.dropout, training=self.training)
        for block in self.blocks:
            x = block(x, mask=mask)
        return self.ln_f(x)

    def _check(self, idx: Tensor, attention_mask: Tensor | None) -> Tensor | None:
        """Check one call at the boundary; returns the keep mask ``(batch, seq)``."""
        c = self.config
        check_token_ids(idx, c.vocab_size, "idx", device=self.tok_emb.weight.device)
        if idx.size(1) > c.max_len:
            raise ValueError(
                f"sequence of {idx.size(1)} tokens is longer than max_len={c.max_len}; "
                f"truncate the input"
            )
        if attention_mask is None:
            return None if c.pad_id is None else idx != c.pad_id
        what = "a boolean or 0/1 integer tensor (1/True = real token, 0 = padding)"
        if not isinstance(attention_mask, Tensor) or attention_mask.is_floating_point():
            raise TypeError(
                f"attention_mask must be {what}, got {describe(attention_mask)}"
            )
        if attention_mask.shape != idx.shape:
            raise ValueError(
                f"attention_mask must have the shape of idx {tuple(idx.shape)}, got "
                f"{tuple(attention_mask.shape)}"
            )
        return attention_mask


class SequenceClassifier(nn.Module):
    """A classification head on a :class:`TransformerEncoder`, for fine-tuning.

    Args:
        encoder: the (pretrained) encoder; its parameters are trained along unless
            frozen.
        n_classes: number of labels.
        pooling: ``"first"`` -- the vector of the first token (BERT's ``[CLS]``), or
            ``"mean"`` -- the average over real (non-padding) tokens.
        dropout: dropout before the final linear layer.

    ``forward(idx, attention_mask=None, labels=None)`` returns
    ``(logits (batch, n_classes), loss)``.
    """

    def __init__(
        self,
        encoder: TransformerEncoder,
        n_classes: int,
        pooling: str = "first",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, TransformerEncoder):
            raise TypeError(
                f"encoder must be a TransformerEncoder, got {type(encoder).__name__}"
            )
        check_int("n_classes", n_classes, minimum=2)
        check_choice("pooling", pooling, ("first", "mean"))
        check_number("dropout", dropout, minimum=0, maximum=1, strict_max=True)
        self.encoder, self.pooling, self.dropout = encoder, pooling, dropout
        self.n_classes = n_classes
        self.head = nn.Linear(encoder.config.d_model, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        idx: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Class logits ``(batch, n_classes)``, and the loss for labels ``(batch,)``."""
        keep = self.encoder._check(idx, attention_mask)
        if labels is not None:
            check_targets(labels, (idx.size(0),), self.n_classes, "labels")
        hidden = self.encoder._encode(idx, keep)  # (batch, seq, d_model)
        if self.pooling == "first":
            pooled = hidden[:, 0]
        elif keep is None:
            pooled = hidden.mean(dim=1)
        else:
            weights = keep.to(hidden.dtype).unsqueeze(-1)  # (batch, seq, 1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        logits = self.head(F.dropout(pooled, p=self.dropout, training=self.training))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels)
        return logits, loss


def mask_tokens(
    ids: Tensor,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] = (),
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masking rule: pick ``prob`` of the tokens, then 80 % / 10 % / 10 %.

    Each non-special token is chosen with probability ``prob``. A chosen token becomes a
    target and, in the input, is replaced by ``mask_id`` (80 %), by a random non-special
    token (10 %), or kept unchanged (10 %). The random and unchanged cases stop the
    model from learning that only ``[MASK]`` positions matter, since ``[MASK]`` never
    appears at fine-tuning time.

    Args:
        ids: token ids ``(batch, seq)`` (or any shape), integer.
        mask_id: id of the ``[MASK]`` token.
        vocab_size: size of the vocabulary the random tokens are drawn from.
        special_ids: ids never chosen and never drawn (padding, ``[CLS]``, ``[SEP]``,
            ...).
        prob: fraction of tokens to choose, in ``(0, 1]``.
        generator: a :class:`torch.Generator` for reproducible masks.

    Returns:
        ``(inputs, targets)``, both shaped like ``ids``: ``targets`` holds the original
        id at chosen positions and ``-100`` everywhere else.
    """
    if (
        not isinstance(ids, Tensor)
        or ids.is_floating_point()
        or ids.dtype == torch.bool
    ):
        raise TypeError(
            f"ids must be an integer tensor of token ids, got {describe(ids)}"
        )
    check_int("vocab_size", vocab_size, minimum=2)
    check_int("mask_id", mask_id, minimum=0, maximum=vocab_size - 1)
    check_number(
        "prob", prob, minimum=0, maximum=1, strict_min=True, hint="; BERT uses 0.15"
    )
    special = torch.tensor(sorted(set(special_ids) | {mask_id}), dtype=ids.dtype)
    allowed = torch.ones(vocab_size, dtype=torch.bool)
    allowed[special[(special >= 0) & (special < vocab_size)]] = False
    random_pool = (
        allowed.nonzero().squeeze(1).to(ids.device)
    )  # ids a random draw may give
    if random_pool.numel() == 0:
        raise ValueError(
            "every id in the vocabulary is special: nothing left to draw from"
        )

    def uniform() -> Tensor:
        return torch.rand(ids.shape, generator=generator).to(ids.device)

    chosen = (uniform() < prob) & ~torch.isin(ids, special.to(ids.device))
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    # One more uniform number per token splits the chosen ones 80 / 10 / 10.
    split = uniform()
    to_mask = chosen & (split < 0.8)
    to_random = chosen & (split >= 0.8) & (split < 0.9)
    pick = torch.randint(len(random_pool), ids.shape, generator=generator).to(
        ids.device
    )
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, random_pool[pick], inputs)
    return inputs, targets
