"""A key/value cache: decoding one token at a time without re-reading the prefix.

During generation the keys and values of past positions never change, so each layer can
keep them and compute only those of the newest token. :class:`KVCache` holds them for
every layer of a model; :meth:`lm_course.models.gpt.GPT.make_cache` makes one that fits.

What it costs is memory: two tensors (keys and values) per layer, each
``heads x d_head`` numbers per token, for every token of the context
(:func:`kv_cache_bytes`). With
grouped-query or multi-query attention the heads here are the *key/value* heads, fewer
than the query heads, and the cache shrinks in proportion.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lm_course.checks import check_int

__all__ = ["KVCache", "kv_cache_bytes"]


def kv_cache_bytes(
    n_layer: int,
    n_kv_head: int,
    d_head: int,
    length: int,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
) -> int:
    """Bytes of keys and values for ``length`` tokens of ``batch_size`` sequences.

    ``2 (keys and values) * n_layer * batch_size * n_kv_head * length * d_head``
    numbers of ``dtype``. Llama 2 7B (32 layers, 32 heads of 128) in float16 needs
    512 KiB per token: 2 GiB for a context of 4096.
    """
    for name, value in (
        ("n_layer", n_layer),
        ("n_kv_head", n_kv_head),
        ("d_head", d_head),
        ("batch_size", batch_size),
    ):
        check_int(name, value, minimum=1)
    check_int("length", length, minimum=0)
    per_number = torch.empty((), dtype=dtype).element_size()
    return 2 * n_layer * batch_size * n_kv_head * length * d_head * per_number


class KVCache:
    """Keys and values of past positions, preallocated for ``max_len`` positions.

    ``k`` and ``v`` are ``(n_layer, batch, heads, max_len, d_head)``; ``pos`` counts the
    positions already stored. During a forward pass every layer calls :meth:`update`
    with the keys and values of the new tokens; the model then calls :meth:`advance`.
    ``heads`` are the model's key/value heads (fewer than its query heads with grouped-
    or multi-query attention). :attr:`nbytes` is the memory it holds.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_head: int,
        max_len: int,
        d_head: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (n_layer, batch_size, n_head, max_len, d_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.batch_size, self.max_len, self.pos = batch_size, max_len, 0

    def update(self, layer_idx: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k, v`` ``(batch, heads, new, d_head)`` after a layer's past ones.

        Returns all keys and values so far, ``(batch, heads, pos + new, d_head)``.
        """
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(
                f"KV cache is full: {self.pos} stored + {k.size(2)} new > "
                f"max_len={self.max_len}"
            )
        self.k[layer_idx, :, :, self.pos : end] = k
        self.v[layer_idx, :, :, self.pos : end] = v
        return self.k[layer_idx, :, :, :end], self.v[layer_idx, :, :, :end]

    @property
    def nbytes(self) -> int:
        """Bytes of the keys and values (all ``max_len`` positions, used or not)."""
        return self.k.nbytes + self.v.nbytes

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as stored (called once per forward pass)."""
        self.pos += n

    def reset(self) -> None:
        """Forget everything (the tensors are reused)."""
        self.pos = 0
