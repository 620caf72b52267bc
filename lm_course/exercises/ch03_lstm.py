"""Chapter 3 (the LSTM baseline): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch03_lstm as ex
    ex.check_lstm_cell_step(lstm_cell_step)

Each ``check_*`` runs small seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. A checker never raises. The solutions are written for reading:
the book shows them folded in its exercises appendix.

Weight layout (as in :class:`torch.nn.LSTMCell` and :class:`torch.nn.GRUCell`): the gates'
weights are stacked along the first dimension, ``W_ih`` is ``(n_gates * hidden, input)``,
``W_hh`` is ``(n_gates * hidden, hidden)``, the biases ``(n_gates * hidden,)``. The LSTM's
gates come in the order input, forget, cell candidate, output (``i, f, g, o``); the GRU's
in the order reset, update, candidate (``r, z, n``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..models.lstm import LSTMConfig, LSTMLanguageModel
from .checker import Case, CheckResult, run_cases

__all__ = [
    "solution_perplexity",
    "solution_lstm_cell_step",
    "solution_gru_cell_step",
    "solution_clip_grad_global_norm",
    "solution_tbptt_train",
    "check_perplexity",
    "check_lstm_cell_step",
    "check_gru_cell_step",
    "check_clip_grad_global_norm",
    "check_tbptt_train",
]


# ------------------------------------------------------------------ reference solutions


def solution_perplexity(token_losses: Tensor) -> float:
    """Perplexity from per-token losses: ``exp(mean(token_losses))``.

    Args:
        token_losses: ``(n_tokens,)`` negative log-likelihoods ``-ln P(token | context)``
            in nats, one per predicted token.

    Returns:
        The perplexity, a float ``>= 1``: the model is, on average, as unsure as if it
        picked uniformly among that many tokens. Average the *losses* (log space), then
        exponentiate: the mean of ``exp(loss)`` would weigh rare surprises far too much.
    """
    return math.exp(token_losses.double().mean().item())


def solution_lstm_cell_step(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
) -> tuple[Tensor, Tensor]:
    """One time step of an LSTM cell, with the weight layout of ``torch.nn.LSTMCell``.

    Args:
        x: input ``(batch, input_size)``.
        h: previous hidden state ``(batch, hidden)``.
        c: previous cell state ``(batch, hidden)``.
        w_ih: ``(4 * hidden, input_size)``, rows for the gates ``i, f, g, o`` in that order.
        w_hh: ``(4 * hidden, hidden)``, same order.
        b_ih, b_hh: ``(4 * hidden,)`` each.

    Returns:
        ``(h_new, c_new)``, each ``(batch, hidden)``::

            i = sigmoid(.)   how much of the candidate to write
            f = sigmoid(.)   how much of the old cell to keep
            g = tanh(.)      the candidate values
            o = sigmoid(.)   how much of the cell to show as the hidden state
            c_new = f * c + i * g
            h_new = o * tanh(c_new)
    """
    # All four gates in one matrix product each, then cut into four (batch, hidden) parts.
    pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (batch, 4 * hidden)
    i, f, g, o = pre.chunk(4, dim=1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    # The cell state is updated by addition: this is the path along which information
    # (and gradient) can travel many steps without being squashed at every step.
    c_new = f * c + i * g
    h_new = o * c_new.tanh()
    return h_new, c_new


def solution_gru_cell_step(
    x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
) -> Tensor:
    """One time step of a GRU cell, with the weight layout of ``torch.nn.GRUCell``.

    Args:
        x: input ``(batch, input_size)``.
        h: previous hidden state ``(batch, hidden)``.
        w_ih: ``(3 * hidden, input_size)``, rows for ``r, z, n`` in that order.
        w_hh: ``(3 * hidden, hidden)``, same order.
        b_ih, b_hh: ``(3 * hidden,)`` each.

    Returns:
        ``h_new`` ``(batch, hidden)``::

            r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        reset gate
            z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)        update gate
            n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     candidate
            h_new = (1 - z) * n + z * h

    The reset gate multiplies ``W_hn h + b_hn`` *including its bias* (PyTorch's
    convention), and ``z`` is the share of the *old* state that is kept.
    """
    gi = x @ w_ih.T + b_ih  # (batch, 3 * hidden): the input's part of every gate
    gh = h @ w_hh.T + b_hh  # (batch, 3 * hidden): the state's part
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def solution_clip_grad_global_norm(
    grads: Sequence[Tensor], max_norm: float
) -> list[Tensor]:
    """Scale a list of gradients so that their *global* L2 norm is at most ``max_norm``.

    Args:
        grads: gradient tensors of any shapes (one per parameter).
        max_norm: the largest allowed global norm, ``> 0``.

    Returns:
        New tensors, same shapes: all multiplied by the same factor
        ``min(1, max_norm / (global_norm + 1e-6))``, where ``global_norm`` is the norm of
        all entries of all tensors taken together (as if concatenated into one vector).
        One common factor keeps the *direction* of the update; only its length is capped.
        Gradients already below the limit are left unchanged (the factor is never > 1).
        The ``1e-6`` is ``torch.nn.utils.clip_grad_norm_``'s guard against dividing by 0.
    """
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    return [g * scale for g in grads]


def solution_tbptt_train(
    model: LSTMLanguageModel,
    stream: Tensor,
    seq_len: int,
    optimizer: torch.optim.Optimizer,
) -> list[float]:
    """Truncated backpropagation through time over consecutive chunks, carrying the state.

    Args:
        model: an :class:`~lm_course.models.lstm.LSTMLanguageModel` (``model(x, y, state)``
            returns ``(logits, loss, state)``).
        stream: ``(batch, n_tokens)`` token ids: ``batch`` parallel tracks of consecutive
            text.
        seq_len: tokens per chunk.
        optimizer: an optimizer over ``model``'s parameters.

    Returns:
        The training loss of every chunk, in order. Chunk ``k`` has inputs
        ``stream[:, k*seq_len : (k+1)*seq_len]`` and targets one token to the right; chunks
        continue while the targets fit in the stream. Each chunk starts from the state the
        previous chunk ended with (zeros for the first), *detached*: the forward pass sees
        all the text so far, but gradients flow back at most ``seq_len`` steps.
    """
    n_tokens = stream.shape[1]
    losses: list[float] = []
    state = None  # the model starts from zeros
    for start in range(0, n_tokens - seq_len, seq_len):
        x = stream[:, start : start + seq_len]
        y = stream[:, start + 1 : start + seq_len + 1]
        _, loss, state = model(x, y, state)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # Keep the values, drop the graph: the next backward stops here. Without this it
        # would try to go back through the previous chunk, whose graph is already freed.
        state = model.detach_state(state)
        losses.append(loss.item())
    return losses


# ------------------------------------------------------------------------- checkers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_perplexity(
    fn: Callable[[Tensor], float], verbose: bool = True
) -> CheckResult:
    """Check ``fn(token_losses)`` against :func:`solution_perplexity`.

    Cases: all losses ``ln 65`` (a uniform guess over 65 characters: perplexity 65), all
    zero (a perfect model: 1), and random losses, where the mean of ``exp`` differs from
    ``exp`` of the mean.
    """
    g = _gen(0)
    cases = [
        Case(
            "10 losses all equal to ln(65) (a uniform guess over 65 characters)",
            (torch.full((10,), math.log(65.0)),),
        ),
        Case(
            "5 losses all 0 (every token predicted with probability 1)",
            (torch.zeros(5),),
        ),
        Case("the losses [1., 2., 3.]", (torch.tensor([1.0, 2.0, 3.0]),)),
        Case(
            "1000 random losses between 0 and 4", (4 * torch.rand(1000, generator=g),)
        ),
    ]

    def as_float(*args: Any) -> float:
        value = fn(*args)
        # A one-element tensor is an acceptable answer too.
        return (
            value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
        )

    candidate = as_float if callable(fn) else fn
    return run_cases(
        "perplexity", candidate, solution_perplexity, cases, verbose=verbose
    )


def _lstm_case(seed: int, batch: int, n_in: int, hidden: int) -> tuple[Tensor, ...]:
    g = _gen(seed)
    scale = 1 / math.sqrt(hidden)  # nn.LSTMCell's initialisation range

    def rand(*shape: int) -> Tensor:
        return (2 * torch.rand(*shape, generator=g) - 1) * scale * 3

    return (
        torch.randn(batch, n_in, generator=g),
        torch.randn(batch, hidden, generator=g),
        torch.randn(batch, hidden, generator=g),
        rand(4 * hidden, n_in),
        rand(4 * hidden, hidden),
        rand(4 * hidden),
        rand(4 * hidden),
    )


def check_lstm_cell_step(
    fn: Callable[..., tuple[Tensor, Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, h, c, w_ih, w_hh, b_ih, b_hh) -> (h_new, c_new)``.

    The reference gives exactly what ``torch.nn.LSTMCell`` gives with the same weights
    (the tests check that). Weights are drawn wider than the default initialisation so
    that gates are far from 0.5 and a wrong gate order shows.
    """
    cases = [
        Case("batch 1, input 2, hidden 1", _lstm_case(5, 1, 2, 1)),
        Case("batch 3, input 4, hidden 5", _lstm_case(1, 3, 4, 5)),
        Case("batch 2, input 7, hidden 3", _lstm_case(2, 2, 7, 3)),
    ]
    return run_cases(
        "lstm_cell_step", fn, solution_lstm_cell_step, cases, verbose=verbose
    )


def check_gru_cell_step(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, h, w_ih, w_hh, b_ih, b_hh) -> h_new`` (same as ``torch.nn.GRUCell``)."""

    def case(seed: int, batch: int, n_in: int, hidden: int) -> tuple[Tensor, ...]:
        x, h, _, w_ih, w_hh, b_ih, b_hh = _lstm_case(seed, batch, n_in, hidden)
        three = (
            3 * hidden
        )  # the GRU has three gates, not four: keep the first 3/4 of rows
        return (x, h, w_ih[:three], w_hh[:three], b_ih[:three], b_hh[:three])

    cases = [
        Case("batch 1, input 2, hidden 1", case(3, 1, 2, 1)),
        Case("batch 3, input 4, hidden 5", case(6, 3, 4, 5)),
        Case("batch 2, input 6, hidden 4", case(7, 2, 6, 4)),
    ]
    return run_cases(
        "gru_cell_step", fn, solution_gru_cell_step, cases, verbose=verbose
    )


def check_clip_grad_global_norm(
    fn: Callable[[Sequence[Tensor], float], list[Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(grads, max_norm) -> clipped grads`` against the reference.

    Cases: a single vector (3, 4) whose norm is 5; two tensors whose global norm is above
    the limit while each one alone is below it (catches clipping each tensor separately);
    and gradients already below the limit (must come back unchanged, not scaled up).
    """
    g = _gen(0)
    cases = [
        Case(
            "one gradient [3., 4.] (norm 5) with max_norm=1",
            ([torch.tensor([3.0, 4.0])], 1.0),
        ),
        Case(
            "two gradients, each of norm 0.8 (global norm 1.13) with max_norm=1",
            ([torch.tensor([0.8, 0.0]), torch.tensor([[0.0, 0.48], [0.64, 0.0]])], 1.0),
        ),
        Case(
            "three random gradients of shapes (4, 3), (3,), (2, 2, 2) with max_norm=0.5",
            (
                [
                    torch.randn(4, 3, generator=g),
                    torch.randn(3, generator=g),
                    torch.randn(2, 2, 2, generator=g),
                ],
                0.5,
            ),
        ),
        Case(
            "two small gradients (global norm 0.05) with max_norm=1: nothing to clip",
            ([torch.tensor([0.03, 0.0]), torch.tensor([0.0, 0.04])], 1.0),
        ),
    ]
    return run_cases(
        "clip_grad_global_norm",
        fn,
        solution_clip_grad_global_norm,
        cases,
        atol=1e-6,
        rtol=1e-5,
        verbose=verbose,
    )


def check_tbptt_train(
    fn: Callable[..., list[float]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(model, stream, seq_len, optimizer) -> list of chunk losses``.

    For each hidden case the checker builds two identical small LSTM models (same seed)
    with plain SGD, runs ``fn`` on one and the reference on the other, and compares the
    chunk losses. Resetting the state every chunk changes the losses from the second chunk
    on; forgetting to detach makes the second ``backward`` fail. The global random state
    is left as it was.
    """

    def runner(train_fn: Callable[..., list[float]]) -> Callable[..., list[float]]:
        def run(
            seed: int, vocab: int, batch: int, n_tokens: int, seq_len: int
        ) -> list[float]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                config = LSTMConfig(vocab_size=vocab, d_embed=4, d_hidden=8)
                model = LSTMLanguageModel(config)
            stream = torch.randint(
                0, vocab, (batch, n_tokens), generator=_gen(seed + 100)
            )
            optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
            try:
                return train_fn(model, stream, seq_len, optimizer)
            except RuntimeError as err:
                if "backward through the graph a second time" not in str(err):
                    raise
                # PyTorch's message is about graphs; say what it means here.
                raise RuntimeError(
                    "backward went back into the previous chunk, whose graph is already "
                    "freed: detach the state before the next chunk "
                    "(state = model.detach_state(state))"
                ) from None

        return run

    cases = [
        Case(
            "2 tracks of 13 tokens (vocabulary 5), chunks of 4: 3 chunks",
            (0, 5, 2, 13, 4),
        ),
        Case(
            "3 tracks of 25 tokens (vocabulary 7), chunks of 6: 4 chunks",
            (1, 7, 3, 25, 6),
        ),
        Case(
            "1 track of 10 tokens (vocabulary 3), chunks of 3: 3 chunks",
            (2, 3, 1, 10, 3),
        ),
    ]
    candidate = runner(fn) if callable(fn) else fn
    return run_cases(
        "tbptt_train",
        candidate,
        runner(solution_tbptt_train),
        cases,
        atol=1e-5,
        rtol=1e-4,
        verbose=verbose,
    )
