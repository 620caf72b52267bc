"""Batches for next-token prediction: random windows cut from one long stream of ids.

A language model learns P(next token | previous tokens). From a stream of ids we cut a
window ``x`` of ``block_size`` tokens; the targets ``y`` are the same window moved one
token to the right, so position ``t`` of ``y`` is the token that follows ``x[:t + 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


def _as_token_ids(name: str, ids: Tensor | Sequence[int]) -> Tensor:
    """Check that ``ids`` is a 1-D integer sequence; return it as a ``torch.long``
    tensor ``(n_tokens,)``."""
    try:
        tensor = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"{name} must be a 1-D tensor of token ids, got {type(ids).__name__} "
            f"({error})"
        ) from None
    if tensor.dim() != 1:
        raise ValueError(
            f"{name} must be 1-D (n_tokens,), got shape {tuple(tensor.shape)}; "
            "flatten it with .reshape(-1)"
        )
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {tensor.dtype}")
    return tensor.long()


def train_val_split(
    ids: Tensor | Sequence[int], val_fraction: float = 0.1
) -> dict[str, Tensor]:
    """Cut a token stream into ``{"train": first part, "val": last val_fraction}``.

    The cut is contiguous, not shuffled: shuffling single tokens would destroy the text,
    and a held-out stretch at the end is text the model has never seen.
    """
    tokens = _as_token_ids("ids", ids)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}"
        )
    n_val = int(len(tokens) * val_fraction)
    if n_val == 0 or n_val == len(tokens):
        raise ValueError(
            f"val_fraction={val_fraction} of {len(tokens)} tokens leaves an empty "
            "split; use more tokens or a different val_fraction"
        )
    return {"train": tokens[:-n_val], "val": tokens[-n_val:]}


class LMBatches:
    """A ``get_batch(split, generator) -> (x, y)`` for the trainer, over token streams.

    Args:
        splits: split name -> 1-D tensor of token ids ``(n_tokens,)``, e.g. the output
            of :func:`train_val_split`.
        block_size: tokens per window (the model's context length).
        batch_size: windows per batch.

    Calling it returns ``x`` and ``y``, both ``(batch_size, block_size)``
    ``torch.long``, with ``y[:, t] == x[:, t + 1]`` for all but the last position.
    Window starts are drawn from ``generator`` only, so the same generator seed always
    gives the same batch.
    """

    def __init__(
        self,
        splits: Mapping[str, Tensor | Sequence[int]],
        block_size: int,
        batch_size: int,
    ) -> None:
        if not isinstance(splits, Mapping) or not splits:
            raise TypeError(
                "splits must be a non-empty dict of split name -> token ids, e.g. "
                f"train_val_split(ids); got {type(splits).__name__}"
            )
        for name, value in [("block_size", block_size), ("batch_size", batch_size)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.block_size = block_size
        self.batch_size = batch_size
        self.splits: dict[str, Tensor] = {}
        for name, ids in splits.items():
            tokens = _as_token_ids(f"splits[{name!r}]", ids)
            if len(tokens) < block_size + 1:
                raise ValueError(
                    f"splits[{name!r}] has {len(tokens)} tokens, but a window of "
                    f"block_size={block_size} needs at least {block_size + 1} "
                    "(inputs plus the one-token shift); use a smaller block_size or "
                    "more data"
                )
            self.splits[name] = tokens

    def __call__(self, split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw one batch ``(x, y)`` of shape ``(batch_size, block_size)`` each."""
        if split not in self.splits:
            raise ValueError(
                f"unknown split {split!r}; this LMBatches has {sorted(self.splits)}"
            )
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator, got {type(generator).__name__}; "
                "e.g. torch.Generator().manual_seed(0)"
            )
        tokens = self.splits[split]
        # A start s needs tokens s .. s + block_size (inclusive): x and the shifted y.
        starts = torch.randint(
            0, len(tokens) - self.block_size, (self.batch_size,), generator=generator
        )
        positions = starts[:, None] + torch.arange(self.block_size)  # (batch, block)
        return tokens[positions], tokens[positions + 1]

    def tokens_per_batch(self) -> int:
        """Input tokens in one batch: ``batch_size * block_size``."""
        return self.batch_size * self.block_size

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(ids):,}" for name, ids in self.splits.items())
        shape = f"block_size={self.block_size}, batch_size={self.batch_size}"
        return f"LMBatches({sizes} tokens; {shape})"
