"""A key/value cache: decoding one token at a time without re-reading the prefix.

During generation the keys and values of past positions never change, so each layer can
keep them and compute only those of the newest token. :class:`KVCache` holds them for
every layer of a model; :meth:`lm_course.models.gpt.GPT.make_cache` makes one that fits.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["KVCache"]


class KVCache:
    """Keys and values of past positions, preallocated for ``max_len`` positions.

    ``k`` and ``v`` are ``(n_layer, batch, heads, max_len, d_head)``; ``pos`` counts the
    positions already stored. During a forward pass every layer calls :meth:`update`
    with the keys and values of the new tokens; the model then calls :meth:`advance`.
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

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as stored (called once per forward pass)."""
        self.pos += n

    def reset(self) -> None:
        """Forget everything (the tensors are reused)."""
        self.pos = 0
