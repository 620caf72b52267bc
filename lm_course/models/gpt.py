"""A decoder-only Transformer language model in the style of GPT-2.

It learns ``P(w_{t+1} | w_1 .. w_t) = softmax(W_o h_t)`` (article 001, section 4) for
every position ``t`` at once: a causal mask lets position ``t`` read positions ``<= t``
only, so one forward pass over a ``(batch, seq)`` block yields ``seq`` next-token
predictions.

Choices the config exposes, all covered by the course's tests:

* ``positional``: ``"learned"`` (GPT-2), ``"sinusoidal"``, ``"rope"`` or ``"alibi"``;
* ``window``: sliding-window (local) attention over the last ``window`` tokens, and
  ``stride``: every ``stride``-th token before the window too (a sparse pattern);
* ``attention``: PyTorch's fused kernel (``"sdpa"``) or the written-out one
  (``"manual"``);
* ``n_kv_head``: fewer key/value heads than query heads -- grouped-query attention, or
  multi-query attention with one (:mod:`lm_course.attention.grouped`);
* ``rope_scale``: RoPE position interpolation, for contexts longer than trained on.

Decoding one token at a time re-reads the whole prefix unless the keys and values of
past positions are kept: a :class:`~lm_course.models.kvcache.KVCache` stores them, so
each new token costs one position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lm_course.attention import BACKENDS, check_heads, sliding_window_mask
from lm_course.attention.grouped import GroupedQueryAttention, check_kv_heads
from lm_course.attention.sparse import local_strided_mask
from lm_course.checks import (
    FromDict,
    check_bool,
    check_choice,
    check_int,
    check_kv_cache,
    check_number,
    check_targets,
    check_token_ids,
)
from lm_course.models.blocks import Block, check_once, init_weights
from lm_course.models.kvcache import KVCache
from lm_course.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    alibi_bias,
)

__all__ = ["GPTConfig", "GPT", "KVCache", "POSITIONAL_KINDS"]

POSITIONAL_KINDS = ("learned", "sinusoidal", "rope", "alibi")


@dataclass
class GPTConfig(FromDict):
    """Hyper-parameters of :class:`GPT`, checked when the config is created.

    The defaults of the optional fields are the course's CPU reference model (4 layers,
    4 heads, width 128); ``block_size`` is the longest context the model can read.
    ``d_ff`` defaults to ``4 * d_model`` and ``n_kv_head`` to ``n_head`` (multi-head
    attention). ``stride`` needs a ``window``; ``rope_scale`` divides the positions
    RoPE sees (1 = none). ``scale_embeddings`` multiplies the token vectors by
    ``sqrt(d_model)`` (the original Transformer's choice, next to a sinusoidal table
    whose entries are as large as 1). ``GPTConfig.from_dict(data, source=path)``
    rebuilds one read from a file.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int | None = None
    dropout: float = 0.0
    bias: bool = False
    attention: str = "sdpa"
    positional: str = "learned"
    window: int | None = None
    tie_weights: bool = True
    n_kv_head: int | None = None
    stride: int | None = None
    rope_scale: float = 1.0
    scale_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = check_int(f"GPTConfig.{name}", getattr(self, name), minimum=1)
            setattr(self, name, value)
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        self.d_ff = check_int(
            "GPTConfig.d_ff", self.d_ff, minimum=1, hint="; None means 4 * d_model"
        )
        check_number(
            "GPTConfig.dropout", self.dropout, minimum=0, maximum=1, strict_max=True
        )
        check_bool("GPTConfig.bias", self.bias)
        check_bool("GPTConfig.tie_weights", self.tie_weights)
        check_bool("GPTConfig.scale_embeddings", self.scale_embeddings)
        check_choice("GPTConfig.attention", self.attention, BACKENDS)
        check_choice("GPTConfig.positional", self.positional, POSITIONAL_KINDS)
        if self.window is not None:
            hint = "; None means full causal attention"
            self.window = check_int(
                "GPTConfig.window", self.window, minimum=1, hint=hint
            )
        check_heads(self.d_model, self.n_head)
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        check_kv_heads(self.n_head, self.n_kv_head, "GPTConfig.n_kv_head")
        self._check_sparsity_and_scale()
        if self.positional == "rope" and self.d_head % 2:
            raise ValueError(
                "positional='rope' needs an even head width, but d_model / n_head "
                f"= {self.d_model} / {self.n_head} = {self.d_head}; change d_model "
                "or n_head"
            )
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ValueError(
                f"positional='sinusoidal' needs an even d_model, got {self.d_model}"
            )

    def _check_sparsity_and_scale(self) -> None:
        if self.stride is not None:
            check_int("GPTConfig.stride", self.stride, minimum=1)
            if self.window is None:
                raise ValueError(
                    "GPTConfig.stride adds every stride-th key to a sliding window; "
                    "set window too (without one, causal attention already sees "
                    "every key)"
                )
        check_number(
            "GPTConfig.rope_scale", self.rope_scale, minimum=0, strict_min=True
        )
        if self.rope_scale != 1 and self.positional != "rope":
            raise ValueError(
                f"GPTConfig.rope_scale={self.rope_scale} interpolates RoPE positions, "
                f"but positional={self.positional!r}; use positional='rope' or "
                "rope_scale=1"
            )

    @property
    def d_head(self) -> int:
        """Width of one attention head, ``d_model // n_head``."""
        return self.d_model // self.n_head


class GPT(nn.Module):
    """Decoder-only Transformer: embeddings, ``n_layer`` pre-LN blocks, LayerNorm, head.

    ``forward(idx (batch, seq), targets=None, cache=None) -> (logits, loss)`` with
    logits ``(batch, seq, vocab_size)``; ``loss`` is the mean cross-entropy over the
    targets that are not ``-100``, or ``None`` without targets.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        # Absolute positions are added to the embeddings; relative ones act in
        # attention.
        self.pos_emb: nn.Module | None = None
        if c.positional == "learned":
            self.pos_emb = LearnedPositionalEmbedding(c.d_model, c.block_size)
        elif c.positional == "sinusoidal":
            self.pos_emb = SinusoidalPositionalEncoding(c.d_model, c.block_size)
        self.rope = None
        if c.positional == "rope":
            self.rope = RotaryEmbedding(c.d_head, c.block_size, scale=c.rope_scale)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_head, c.d_ff, c.dropout, c.bias, c.attention)
            for _ in range(c.n_layer)
        )
        if c.n_kv_head != c.n_head:  # heads share keys and values: GQA or MQA
            for block in self.blocks:
                block.attn = GroupedQueryAttention(
                    c.d_model, c.n_head, c.n_kv_head, c.dropout, c.bias, c.attention
                )
        self.ln_f = nn.LayerNorm(c.d_model, bias=c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)

        # Masks and biases for every (query, key) pair of a block, built once and sliced
        # at each call. Plain causal attention needs none: the fused kernel's is_causal.
        mask_table = None
        if c.window is not None and c.stride is not None:
            mask_table = local_strided_mask(c.block_size, c.window, c.stride)
        elif c.window is not None:
            mask_table = sliding_window_mask(c.block_size, c.window)
        elif c.positional == "alibi":
            mask_table = torch.ones(c.block_size, c.block_size, dtype=torch.bool).tril()
        alibi = alibi_bias(c.n_head, c.block_size) if c.positional == "alibi" else None
        self.register_buffer(
            "attn_mask", mask_table, persistent=False
        )  # (block, block)
        self.register_buffer("alibi", alibi, persistent=False)  # (heads, block, block)

        init_weights(self, c.n_layer)
        if c.tie_weights:
            # The same matrix maps ids to vectors and vectors to scores over ids.
            self.lm_head.weight = self.tok_emb.weight
        check_once(self)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        cache: KVCache | None = None,
        *,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Next-token logits for every position, and the loss when targets are given.

        Args:
            idx: token ids ``(batch, seq)``, integer, values in ``[0, vocab_size)``.
            targets: ``(batch, seq)`` ids to predict (usually ``idx`` shifted by one);
                positions set to ``-100`` are ignored.
            cache: a :class:`KVCache` from :meth:`make_cache`; ``idx`` then holds the
                *new* tokens only, which sit at positions ``cache.pos ..``.
            last_only: return logits ``(batch, 1, vocab_size)`` for the last position
                only, which saves the biggest matmul when sampling. Not with targets.

        Returns:
            ``(logits, loss)``: logits ``(batch, seq, vocab_size)`` (or
            ``(batch, 1, vocab_size)``), loss a scalar tensor or ``None``.
        """
        start = self._check(idx, targets, cache, last_only)
        x = self._hidden(idx, start, cache)  # (batch, seq, d_model)
        if last_only:
            x = x[:, -1:]
        logits = self.lm_head(x)  # (batch, seq, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)),
                targets.reshape(-1).long(),
                ignore_index=-100,
            )
        return logits, loss

    def encode(self, idx: Tensor) -> Tensor:
        """The last layer's vectors ``(batch, seq, d_model)`` for ids ``(batch, seq)``.

        What the output layer reads (after the final LayerNorm): a pretrained trunk's
        features, for a classification head (:mod:`lm_course.finetune.heads`).
        """
        return self._hidden(idx, self._check(idx, None, None, False), None)

    def _hidden(self, idx: Tensor, start: int, cache: KVCache | None) -> Tensor:
        """Embeddings, blocks and final LayerNorm on checked ids: ``(b, t, d)``."""
        c = self.config
        t = idx.size(1)
        x = self.tok_emb(idx)  # (batch, seq, d_model)
        if c.scale_embeddings:  # Vaswani et al.: token vectors times sqrt(d_model)
            x = x * c.d_model**0.5
        if self.pos_emb is not None:
            x = self.pos_emb(x, start)
        if c.dropout > 0.0:
            x = F.dropout(x, p=c.dropout, training=self.training)

        end = start + t
        mask = None if self.attn_mask is None else self.attn_mask[start:end, :end]
        attn_bias = None if self.alibi is None else self.alibi[:, start:end, :end]
        for i, block in enumerate(self.blocks):
            x = block(
                x,
                mask=mask,
                attn_bias=attn_bias,
                is_causal=mask is None,
                rope=self.rope,
                cache=cache,
                layer_idx=i,
            )
        if cache is not None:
            cache.advance(t)
        return self.ln_f(x)

    def _check(
        self,
        idx: Tensor,
        targets: Tensor | None,
        cache: KVCache | None,
        last_only: bool,
    ) -> int:
        """Check one call at the model's boundary; returns the first position."""
        c, weight = self.config, self.tok_emb.weight
        check_token_ids(idx, c.vocab_size, "idx", device=weight.device)
        b, t = idx.shape
        start = 0
        if cache is not None:
            need = (c.n_layer, b, c.n_kv_head, None, c.d_head)
            check_kv_cache(cache, need, weight.dtype, weight.device)
            start = cache.pos
        if start + t > c.block_size:
            where = f" (the cache already holds {start})" if cache is not None else ""
            raise ValueError(
                f"sequence of {t} tokens{where} is longer than "
                f"block_size={c.block_size}; crop the input to its last "
                f"{c.block_size - start} tokens"
            )
        if targets is not None:
            if last_only:
                raise ValueError(
                    "last_only=True returns one position; it cannot be used "
                    "with targets"
                )
            check_targets(targets, (b, t), c.vocab_size, "targets")
        return start

    # ------------------------------------------------------------------ helpers

    def make_cache(self, batch_size: int) -> KVCache:
        """An empty :class:`KVCache` for ``batch_size`` rows, like the model's weights.

        Its tensors have the model's device and dtype.
        """
        c = self.config
        w = self.tok_emb.weight
        return KVCache(
            c.n_layer,
            check_int("batch_size", batch_size, minimum=1),
            c.n_kv_head,
            c.block_size,
            c.d_head,
            device=w.device,
            dtype=w.dtype,
        )

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (shared ones counted once).

        With ``non_embedding=True`` the lookup tables that do no arithmetic are left
        out: learned position embeddings and, when the weights are not tied, the input
        token embedding. (Tied, that matrix is also the output layer and does real
        work.) This is the ``N`` of the ``6N`` FLOPs-per-token rule.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if isinstance(self.pos_emb, LearnedPositionalEmbedding):
                n -= self.pos_emb.weight.numel()
            if not self.config.tie_weights:
                n -= self.tok_emb.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward): ``6 N + 12 L d T``.

        ``6 N`` counts the weight matmuls (2 FLOPs per multiply-add, backward twice the
        forward); ``12 L d T`` the attention scores and weighted sums over a context of
        ``T`` (``seq_len``, default ``block_size``; at most ``window`` with local
        attention, plus every ``stride``-th key before it). Divide achieved FLOP/s by
        the hardware peak to get MFU.
        """
        c = self.config
        t = c.block_size if seq_len is None else seq_len
        if c.window is not None:
            before = max(t - c.window, 0) // c.stride if c.stride is not None else 0
            t = min(t, c.window) + before
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.d_model * t
