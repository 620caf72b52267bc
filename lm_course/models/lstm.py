"""An LSTM language model: the corrected version of the one in article 000, section 5.2.

The model is the article's: token embedding, an LSTM, and a linear layer to one score
(logit) per vocabulary entry. What this version fixes:

* The article's ``init_hidden`` reads ``self.hidden_dim``, which ``__init__`` never
  sets, so it fails with ``AttributeError``. Here the sizes live in :class:`LSTMConfig`.
* The article predicts only from ``output[-1]``, the last position, so each sequence of
  ``seq`` tokens trains a single prediction. A language model predicts the next token at
  *every* position: the loss here is the mean cross-entropy over all ``batch * seq``
  positions, which gives ``seq`` times more training signal from the same data.
* ``nn.LSTM`` defaults to ``(seq, batch, ...)`` tensors, an easy source of silent shape
  mix-ups. Here ``batch_first=True``: every tensor is ``(batch, seq, ...)``, like the
  rest of the course.
* The article's loop uses ``vocab_size``, ``num_epochs``, ``train_loader`` and
  ``batch_size`` without defining them, so its reported losses (0.4194 ... 0.3921)
  cannot be reproduced; its step count ``len(train_loader) // batch_size`` also divides
  by the batch size twice (``len`` of a loader already counts batches). The course
  trains this model with its own trainer, seeded, on Tiny Shakespeare.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lm_course.checks import (
    FromDict,
    check_int,
    check_number,
    check_targets,
    check_token_ids,
    describe,
)

#: The LSTM's recurrent state: hidden and cell tensors, each
#: ``(n_layers, batch, d_hidden)``.
LSTMState = tuple[torch.Tensor, torch.Tensor]

#: Target value that the loss skips (padding), the same as the course's GPT model uses.
IGNORE_INDEX = -100


@dataclass
class LSTMConfig(FromDict):
    """Sizes of an :class:`LSTMLanguageModel`.

    Args:
        vocab_size: number of token ids.
        d_embed: size of each token's embedding vector.
        d_hidden: size of the LSTM's hidden and cell state.
        n_layers: number of stacked LSTM layers.
        dropout: dropout probability on the embeddings, between LSTM layers and on the
            LSTM output; 0 turns it off.
    """

    vocab_size: int
    d_embed: int = 64
    d_hidden: int = 256
    n_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_embed", "d_hidden", "n_layers"):
            value = check_int(f"LSTMConfig.{name}", getattr(self, name), minimum=1)
            setattr(self, name, value)
        check_number(
            "LSTMConfig.dropout",
            self.dropout,
            minimum=0,
            maximum=1,
            strict_max=True,
            hint=" (the probability of zeroing a value: 0.1 or 0.2 are usual, 0 turns "
            "dropout off)",
        )


class LSTMLanguageModel(nn.Module):
    """Embedding -> LSTM -> linear: predicts the next token at every position.

    ``forward`` returns ``(logits, loss, state)``, with the loss at index 1 like the
    course's other models, so the same trainer can train them all.
    """

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        if not isinstance(config, LSTMConfig):
            raise TypeError(
                f"config must be an LSTMConfig, got {type(config).__name__}; "
                "e.g. LSTMLanguageModel(LSTMConfig(vocab_size=65))"
            )
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_embed)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.d_embed,
            config.d_hidden,
            num_layers=config.n_layers,
            batch_first=True,
            # nn.LSTM applies this dropout only between layers, and warns if there is
            # one layer.
            dropout=config.dropout if config.n_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.d_hidden, config.vocab_size)

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> LSTMState:
        """An all-zero state, for the start of a batch of sequences.

        Returns ``(h, c)``, each of shape ``(n_layers, batch_size, d_hidden)``. Passing
        ``state=None`` to :meth:`forward` does the same.
        """
        check_int("batch_size", batch_size, minimum=1)
        weight = self.head.weight
        shape = (self.config.n_layers, batch_size, self.config.d_hidden)
        device = weight.device if device is None else device
        return (
            torch.zeros(shape, dtype=weight.dtype, device=device),
            torch.zeros(shape, dtype=weight.dtype, device=device),
        )

    @staticmethod
    def detach_state(state: LSTMState) -> LSTMState:
        """Cut the state from the graph that made it.

        To carry the state from one batch into the next (truncated backpropagation
        through time), detach it first; otherwise ``backward`` would go back through
        every earlier batch, and fail because their graphs are already freed.
        """
        return (state[0].detach(), state[1].detach())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        state: LSTMState | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, LSTMState]:
        """Score every possible next token at every position.

        Args:
            idx: token ids, ``(batch, seq)``.
            targets: the next token at each position, ``(batch, seq)``; when given, the
                loss is computed. Positions set to ``-100`` (padding) are left out of
                it.
            state: ``(h, c)`` from an earlier call, each
                ``(n_layers, batch, d_hidden)``, to continue those sequences; None
                starts from zeros.

        Returns:
            ``(logits, loss, state)``: logits ``(batch, seq, vocab_size)``; loss, the
            mean cross-entropy over all ``batch * seq`` positions, a scalar (None
            without targets); and the state after the last position, for the next call.
        """
        weight = self.head.weight
        check_token_ids(idx, self.config.vocab_size, "idx", device=weight.device)
        batch, seq = idx.shape
        if targets is not None:
            check_targets(targets, (batch, seq), self.config.vocab_size, "targets")
        if state is not None:
            self._check_state(state, batch)

        x = self.dropout(self.embedding(idx))  # (batch, seq, d_embed)
        output, state = self.lstm(x, state)  # output: (batch, seq, d_hidden)
        logits = self.head(self.dropout(output))  # (batch, seq, vocab_size)

        loss = None
        if targets is not None:
            # cross_entropy wants (N, classes): flatten batch and time into N positions.
            loss = F.cross_entropy(
                logits.reshape(batch * seq, -1),
                targets.reshape(-1).long(),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss, state

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_state(self, state: LSTMState, batch: int) -> None:
        expected = (self.config.n_layers, batch, self.config.d_hidden)
        weight = self.head.weight
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise TypeError(
                "state must be a tuple (h, c), as returned by forward or init_state, "
                f"got {describe(state)}"
            )
        for name, tensor in zip(("h", "c"), state):
            if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != expected:
                raise ValueError(
                    f"state {name} must have shape (n_layers, batch, d_hidden) = "
                    f"{expected}, got {describe(tensor)}; use init_state(batch_size) "
                    "or the state from the last call with the same batch size"
                )
            if tensor.dtype != weight.dtype or tensor.device != weight.device:
                raise ValueError(
                    f"state {name} is {tensor.dtype} on {tensor.device}, but the model "
                    f"is {weight.dtype} on {weight.device}; use init_state(batch_size) "
                    "or the state from the last call"
                )
