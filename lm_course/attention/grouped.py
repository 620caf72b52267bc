"""Grouped-query and multi-query attention: query heads that share keys and values.

In multi-head attention (MHA) each of the ``n_heads`` heads has its own queries, keys
and values. When a model generates text, the keys and values of every past token are
kept in a cache (:class:`~lm_course.models.kvcache.KVCache`), and for long contexts that
cache, not the weights, fills the memory:
``2 * n_layer * n_heads * d_head * context`` numbers per sequence.

* **Multi-query attention** (MQA, Shazeer, 2019): all query heads share *one* key head
  and one value head, so the cache shrinks ``n_heads`` times.
* **Grouped-query attention** (GQA, Ainslie et al., 2023): the query heads form
  ``n_kv_heads`` groups, each sharing one key/value head; ``n_kv_heads = n_heads`` is
  MHA and ``n_kv_heads = 1`` is MQA. Llama 2 70B uses 8 key/value heads for 64 query
  heads.

Query head ``h`` reads key/value head ``h // (n_heads // n_kv_heads)``: consecutive
query heads form a group. Only the projections and the cache change; the attention of
each query head is the usual one, over its group's keys and values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from lm_course.attention import MultiHeadAttention, _split_heads
from lm_course.checks import (
    check_int,
)

if TYPE_CHECKING:
    pass

__all__ = ["repeat_kv", "check_kv_heads", "GroupedQueryAttention"]


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """``(batch, n_kv_heads, seq, d_head)`` -> ``(batch, n_kv_heads * n_rep, seq,
    d_head)``: each key/value head repeated for the ``n_rep`` query heads of its group.

    Head ``j`` of the input becomes heads ``j * n_rep .. (j + 1) * n_rep - 1``.
    """
    check_int("n_rep", n_rep, minimum=1)
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def check_kv_heads(n_heads: int, n_kv_heads: int, name: str = "n_kv_heads") -> int:
    """``n_kv_heads`` must divide ``n_heads`` (each group has the same size)."""
    check_int(name, n_kv_heads, minimum=1)
    if n_heads % n_kv_heads:
        divisors = [g for g in range(1, n_heads + 1) if n_heads % g == 0]
        raise ValueError(
            f"{name}={n_kv_heads} does not divide the {n_heads} query heads into "
            f"equal groups; choose one of {divisors} ({n_heads} is multi-head, 1 is "
            "multi-query attention)"
        )
    return n_kv_heads


class GroupedQueryAttention(MultiHeadAttention):
    """Self-attention with ``n_kv_heads`` key/value heads shared by ``n_heads`` queries.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: query heads, each of width ``d_head = d_model // n_heads``.
        n_kv_heads: key/value heads; must divide ``n_heads``. ``n_heads`` gives
            multi-head attention (with other weight shapes than
            :class:`~lm_course.attention.MultiHeadAttention`), ``1`` multi-query.
        dropout, bias, backend: as in :class:`~lm_course.attention.MultiHeadAttention`.

    The fused projection makes ``n_heads`` query heads and ``n_kv_heads`` key and value
    heads: ``d_model * (n_heads + 2 * n_kv_heads) * d_head`` weights instead of
    ``3 * d_model^2``. A cache passed to ``forward`` holds ``n_kv_heads`` heads.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int,
        dropout: float = 0.0,
        bias: bool = False,
        backend: str = "sdpa",
    ) -> None:
        super().__init__(d_model, n_heads, dropout, bias, backend)
        self.n_kv_heads = check_kv_heads(n_heads, n_kv_heads)
        width = (n_heads + 2 * n_kv_heads) * self.d_head
        self.qkv = nn.Linear(d_model, width, bias=bias)  # replaces the MHA projection

    def project_heads(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``q`` ``(batch, n_heads, seq, d_head)``, ``k`` and ``v`` ``(batch,
        n_kv_heads, seq, d_head)``, from ``x`` ``(batch, seq, d_model)``."""
        kv_width = self.n_kv_heads * self.d_head
        q, k, v = self.qkv(x).split([self.d_model, kv_width, kv_width], dim=-1)
        q = _split_heads(q, self.n_heads)
        return q, _split_heads(k, self.n_kv_heads), _split_heads(v, self.n_kv_heads)

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        mask: Tensor | None = None,
        attn_bias: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Each group of query heads attends over its shared key/value head.

        ``q`` ``(batch, n_heads, q_len, d_head)``, ``k`` and ``v`` ``(batch,
        n_kv_heads, k_len, d_head)``; returns ``(batch, n_heads, q_len, d_head)``.
        """
        group = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, group), repeat_kv(v, group)
        return super().attend(
            q, k, v, mask=mask, attn_bias=attn_bias, is_causal=is_causal
        )
