"""A tiny language model and token data for the training tests and the DDP worker."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VOCAB = 16


class TinyLM(nn.Module):
    """Embedding -> dropout -> layer norm -> linear head: a bigram model.

    It has every part the trainer must handle: decayed matrices, undecayed gains and
    biases, dropout, and optionally tied weights.
    """

    def __init__(
        self, vocab: int = VOCAB, dim: int = 16, dropout: float = 0.1, tie: bool = False
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        if tie:
            self.head.weight = self.embed.weight  # (vocab, dim) both

    def forward(
        self, x: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """x ``(batch, seq)`` ids -> logits ``(batch, seq, vocab)``, and the loss."""
        logits = self.head(self.norm(self.drop(self.embed(x))))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def markov_tokens(n: int = 4000, vocab: int = VOCAB, seed: int = 0) -> Tensor:
    """Token ids where the next token is (3 * previous + 1) % vocab 80% of the time: a
    pattern a bigram model can learn, so its loss falls well below ln(vocab)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.empty(n, dtype=torch.long)
    ids[0] = 0
    noise = torch.randint(0, vocab, (n,), generator=gen)
    follow = torch.rand(n, generator=gen) < 0.8
    for i in range(1, n):
        ids[i] = (3 * ids[i - 1] + 1) % vocab if follow[i] else noise[i]
    return ids


def make_model(seed: int = 0, **kwargs: object) -> TinyLM:
    """A TinyLM with weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return TinyLM(**kwargs)  # type: ignore[arg-type]
