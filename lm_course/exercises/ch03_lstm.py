"""Chapter 3 (the LSTM baseline): reference solutions and exercise checkers.

In the notebook a reader fills in a stub and passes it to the matching checker::

    from lm_course.exercises import ch03_lstm as ex
    ex.check_lstm_cell_step(lstm_cell_step)

Each ``check_*`` runs seeded hidden cases against the ``solution_*`` function of the
same name and prints ``[PASSED]``, ``[FAILED] ...`` (which case, expected vs got) or
``[NOT ATTEMPTED YET]``. The cases go from small ones a reader can follow by hand to
realistic sizes: thousands of losses, a hidden state of 100, the gradients of a whole
model, streams whose length the chunk length divides and ones it does not. What every
check also holds an answer to (type and dtype, inputs left alone, no built-in shortcut)
is in :mod:`lm_course.exercises.checker`. The solutions are written for reading: the
book shows them folded in its exercises appendix.

Weight layout (as in :class:`torch.nn.LSTMCell` and :class:`torch.nn.GRUCell`): the
gates' weights are stacked along the first dimension, ``W_ih`` is
``(n_gates * hidden, input)``, ``W_hh`` is ``(n_gates * hidden, hidden)``, the biases
``(n_gates * hidden,)``. The LSTM's gates come in the order input, forget, cell
candidate, output (``i, f, g, o``); the GRU's in the order reset, update, candidate
(``r, z, n``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from ..models.lstm import LSTMConfig, LSTMLanguageModel
from .checker import Case, CheckResult, Forbid, run_cases

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
        token_losses: ``(n_tokens,)`` negative log-likelihoods
            ``-ln P(token | context)`` in nats, one per predicted token.

    Returns:
        The perplexity, a Python float ``>= 1``: the model is, on average, as unsure
        as if it picked uniformly among that many tokens. Average the *losses* (log
        space), then exponentiate: the mean of ``exp(loss)`` would weigh rare surprises
        far too much.
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
        w_ih: ``(4 * hidden, input_size)``, rows for the gates ``i, f, g, o`` in that
            order.
        w_hh: ``(4 * hidden, hidden)``, same order.
        b_ih, b_hh: ``(4 * hidden,)`` each.

    Returns:
        ``(h_new, c_new)``, new tensors, each ``(batch, hidden)``::

            i = sigmoid(.)   how much of the candidate to write
            f = sigmoid(.)   how much of the old cell to keep
            g = tanh(.)      the candidate values
            o = sigmoid(.)   how much of the cell to show as the hidden state
            c_new = f * c + i * g
            h_new = o * tanh(c_new)
    """
    # All four gates in one matrix product each, then cut into four (batch, hidden).
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
        A list of new tensors, same shapes and dtypes: all multiplied by the same
        factor ``min(1, max_norm / (global_norm + 1e-6))``, where ``global_norm`` is
        the norm of all entries of all tensors taken together (as if concatenated into
        one vector). One common factor keeps the *direction* of the update; only its
        length is capped. Gradients already below the limit are left unchanged (the
        factor is never > 1). The ``1e-6`` is ``torch.nn.utils.clip_grad_norm_``'s
        guard against dividing by 0.
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
    """Truncated backpropagation through time over consecutive chunks, with a state.

    Args:
        model: an :class:`~lm_course.models.lstm.LSTMLanguageModel`
            (``model(x, y, state)`` returns ``(logits, loss, state)``).
        stream: ``(batch, n_tokens)`` token ids: ``batch`` parallel tracks of
            consecutive text.
        seq_len: tokens per chunk.
        optimizer: an optimizer over ``model``'s parameters.

    Returns:
        The training loss of every chunk as a Python float, in order. Chunk ``k`` has
        inputs ``stream[:, k*seq_len : (k+1)*seq_len]`` and targets one token to the
        right; chunks continue while the targets fit in the stream. Each chunk starts
        from the state the previous chunk ended with (zeros for the first),
        *detached*: the forward pass sees all the text so far, but gradients flow back
        at most ``seq_len`` steps.
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
    zero (a perfect model: 1), ``[1, 2, 3]`` (where the mean of ``exp`` differs from
    ``exp`` of the mean), one loss, 1000 random losses, 5000 losses of about 1.5 nats
    (the product of the probabilities underflows to 0 in float32), 20 000 losses, and
    float64 losses. The answer is a Python float, not a tensor and not a string.
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
        Case("a single loss of 2.5", (torch.tensor([2.5]),)),
        Case(
            "1000 random losses between 0 and 4", (4 * torch.rand(1000, generator=g),)
        ),
        Case(
            "5000 losses of about 1.5 nats (the product of the probabilities "
            "underflows to 0 in float32)",
            (3 * torch.rand(5000, generator=g),),
        ),
        Case("20 000 losses between 0 and 6", (6 * torch.rand(20_000, generator=g),)),
        Case(
            "300 float64 losses between 0 and 3",
            (3 * torch.rand(300, generator=g, dtype=torch.float64),),
        ),
    ]
    return run_cases(
        "perplexity", fn, solution_perplexity, cases, atol=0, rtol=2e-5, verbose=verbose
    )


def _cell_case(
    description: str,
    seed: int,
    sizes: tuple[int, int, int],
    *,
    spread: float = 3.0,
    dtype: torch.dtype = torch.float32,
    trainable: bool = False,
) -> Case:
    """One LSTM step's inputs ``x, h, c, w_ih, w_hh, b_ih, b_hh``.

    ``sizes`` is ``(batch, input, hidden)``.

    The weights are drawn ``spread`` times wider than ``nn.LSTMCell``'s initialisation,
    so that gates are far from 0.5 and a wrong gate order shows; ``trainable`` makes
    them require gradients, as a model's parameters do. A correct float32 answer is
    exact up to about ``eps`` times the largest pre-activation: that is the tolerance.
    """
    batch, n_in, hidden = sizes
    g = _gen(seed)
    scale = spread / math.sqrt(hidden)

    def weight(*shape: int) -> Tensor:
        return (
            (2 * torch.rand(*shape, generator=g, dtype=dtype) - 1) * scale
        ).requires_grad_(trainable)

    x, h, c = (
        torch.randn(batch, n, generator=g, dtype=dtype) for n in (n_in, hidden, hidden)
    )
    w_ih, w_hh, b_ih, b_hh = (
        weight(4 * hidden, n_in),
        weight(4 * hidden, hidden),
        weight(4 * hidden),
        weight(4 * hidden),
    )
    pre = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).detach()
    atol = 1e-6 + 4 * torch.finfo(dtype).eps * pre.abs().max().item()
    return Case(description, (x, h, c, w_ih, w_hh, b_ih, b_hh), atol=atol)


def _cell_cases() -> list[Case]:
    """The hidden cases of the LSTM step (the GRU's use the first 3/4 of the rows)."""
    return [
        _cell_case("batch 1, input 2, hidden 1", 5, (1, 2, 1)),
        _cell_case("batch 3, input 4, hidden 5", 1, (3, 4, 5)),
        _cell_case("batch 2, input 7, hidden 3", 2, (2, 7, 3)),
        _cell_case("batch 32, input 64, hidden 100", 3, (32, 64, 100)),
        _cell_case(
            "batch 4, input 10, hidden 20, weights that require gradients (a model's "
            "parameters)",
            4,
            (4, 10, 20),
            trainable=True,
        ),
        _cell_case(
            "batch 8, input 16, hidden 70, weights 100 times the usual size (gates "
            "saturate: a tanh written with exp overflows)",
            6,
            (8, 16, 70),
            spread=100.0,
        ),
        _cell_case(
            "float64 inputs, batch 3, input 5, hidden 6 (the result stays float64)",
            7,
            (3, 5, 6),
            dtype=torch.float64,
        ),
    ]


class _LSTMStep(NamedTuple):
    """The answer of an LSTM step, with its parts named for failure messages."""

    h_new: Tensor
    c_new: Tensor


def check_lstm_cell_step(
    fn: Callable[..., tuple[Tensor, Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(x, h, c, w_ih, w_hh, b_ih, b_hh) -> (h_new, c_new)``.

    The reference gives what ``torch.nn.LSTMCell`` gives with the same weights (the
    tests check that). Cases from one hidden unit to batch 32 with hidden 100, weights
    that require gradients, saturated gates and float64; the built-in LSTM functions are
    switched off, and ``h`` and ``c`` must be left as they were.
    """
    cases = _cell_cases()
    return run_cases(
        "lstm_cell_step",
        fn,
        lambda *inputs: _LSTMStep(*solution_lstm_cell_step(*inputs)),
        cases,
        atol=1e-6,
        forbid=Forbid(
            "lstm",
            why="write the gates yourself; torch's LSTM is what your function is "
            "compared against",
        ),
        verbose=verbose,
    )


def check_gru_cell_step(fn: Callable[..., Tensor], verbose: bool = True) -> CheckResult:
    """Check ``fn(x, h, w_ih, w_hh, b_ih, b_hh) -> h_new`` (as ``torch.nn.GRUCell``).

    The cases of the LSTM step, with three gates; the built-in GRU is switched off.
    """
    cases = []
    for case in _cell_cases():
        x, h, _, *weights = case.args
        rows = 3 * h.shape[1]  # three gates, not four: the first 3/4 of the rows
        gru = [w.detach()[:rows].requires_grad_(w.requires_grad) for w in weights]
        cases.append(replace(case, args=(x, h, *gru)))
    return run_cases(
        "gru_cell_step",
        fn,
        solution_gru_cell_step,
        cases,
        forbid=Forbid(
            "gru",
            why="write the gates yourself; torch's GRU is what your function is "
            "compared against",
        ),
        verbose=verbose,
    )


def check_clip_grad_global_norm(
    fn: Callable[[Sequence[Tensor], float], list[Tensor]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(grads, max_norm) -> clipped grads`` against the reference.

    Cases: a single vector (3, 4) whose norm is 5; two tensors whose global norm is
    above the limit while each alone is below it (catches clipping each tensor on its
    own); gradients below the limit (they come back unchanged, not scaled up);
    gradients of zero; the gradients of a small LSTM language model (350 000 numbers);
    100 small tensors (past any buffer of 64); exploding gradients with a norm of about
    a million; and float64 gradients. The answer is a list of new tensors of the
    gradients' dtype; the gradients are left as they were, and
    ``torch.nn.utils.clip_grad_norm_`` is switched off.
    """
    g = _gen(0)
    model_shapes = [
        (65, 64),
        (1024, 64),
        (1024, 256),
        (1024,),
        (1024,),
        (65, 256),
        (65,),
    ]
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
            "three random gradients of shapes (4, 3), (3,), (2, 2, 2) with "
            "max_norm=0.5",
            ([torch.randn(s, generator=g) for s in [(4, 3), (3,), (2, 2, 2)]], 0.5),
        ),
        Case(
            "two small gradients (global norm 0.05) with max_norm=1: nothing to clip",
            ([torch.tensor([0.03, 0.0]), torch.tensor([0.0, 0.04])], 1.0),
        ),
        Case(
            "two gradients of zeros (norm 0) with max_norm=1: nothing to clip",
            ([torch.zeros(3), torch.zeros(2, 2)], 1.0),
        ),
        Case(
            "the gradients of a small LSTM language model (7 tensors, 350 000 "
            "numbers, global norm about 5) with max_norm=1",
            ([0.01 * torch.randn(s, generator=g) for s in model_shapes], 1.0),
        ),
        Case(
            "100 gradients of 3 numbers, each of norm about 0.17 (global norm 1.7), "
            "with max_norm=1",
            ([0.1 * torch.randn(3, generator=g) for _ in range(100)], 1.0),
        ),
        Case(
            "exploding gradients, entries around 10 000 (global norm about 1e6), with "
            "max_norm=0.25",
            ([1e4 * torch.randn(50, 200, generator=g), torch.randn(7)], 0.25),
        ),
        Case(
            "float64 gradients of shapes (5, 5) and (5,) with max_norm=0.1 (the "
            "results stay float64)",
            (
                [
                    torch.randn(s, generator=g, dtype=torch.float64)
                    for s in [(5, 5), (5,)]
                ],
                0.1,
            ),
        ),
    ]
    return run_cases(
        "clip_grad_global_norm",
        fn,
        solution_clip_grad_global_norm,
        cases,
        atol=1e-12,
        rtol=1e-5,
        # torch.nn.utils.clip_grad_norm_ works through the _foreach kernels, which a
        # hand-written answer has no reason to call.
        forbid=Forbid(
            "_foreach",
            why="scale the gradients yourself; torch.nn.utils.clip_grad_norm_ is what "
            "your function is compared against",
        ),
        verbose=verbose,
    )


def _train_on_case(
    train_fn: Callable[..., list[float]],
    seed: int,
    vocab: int,
    batch: int,
    n_tokens: int,
    seq_len: int,
) -> list[float]:
    """Run ``train_fn`` on a fresh small LSTM (the same for every function, by seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LSTMLanguageModel(LSTMConfig(vocab_size=vocab, d_embed=8, d_hidden=16))
    stream = torch.randint(0, vocab, (batch, n_tokens), generator=_gen(seed + 100))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return train_fn(model, stream, seq_len, optimizer)


def check_tbptt_train(
    fn: Callable[..., list[float]], verbose: bool = True
) -> CheckResult:
    """Check ``fn(model, stream, seq_len, optimizer) -> list of chunk losses``.

    For each case the checker builds two identical small LSTM models (same seed) with
    plain SGD, runs ``fn`` on one and the reference on the other, and compares the chunk
    losses. Lengths where the chunks use up the stream exactly and lengths that leave
    tokens over (only whole chunks count: 12 tokens in chunks of 4 make 2 chunks, since
    the targets of a third would run past the end), up to 4 tracks of 257 tokens in
    chunks of 32, and chunks of one token. Resetting the state every chunk changes the
    losses from the second chunk on; forgetting to detach makes the second ``backward``
    fail, which the report explains. The losses are Python floats.
    """
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
            "2 tracks of 12 tokens (vocabulary 5), chunks of 4: 2 chunks (the targets "
            "of a third would need a 13th token)",
            (2, 5, 2, 12, 4),
        ),
        Case(
            "1 track of 20 tokens (vocabulary 3), chunks of 6: 3 chunks and 1 token "
            "left over",
            (3, 3, 1, 20, 6),
        ),
        Case(
            "1 track of 6 tokens (vocabulary 4), chunks of 1: 5 chunks", (4, 4, 1, 6, 1)
        ),
        Case(
            "4 tracks of 257 tokens (vocabulary 65), chunks of 32: 8 chunks",
            (5, 65, 4, 257, 32),
        ),
        Case(
            "3 tracks of 200 tokens (vocabulary 65), chunks of 32: 6 chunks and 7 "
            "tokens left over",
            (6, 65, 3, 200, 32),
        ),
    ]
    return run_cases(
        "tbptt_train",
        fn,
        solution_tbptt_train,
        cases,
        atol=1e-6,
        rtol=1e-5,
        call=_train_on_case,
        hints={
            "backward through the graph a second time": (
                "That backward went on into the previous chunk, whose graph is already "
                "freed: detach the state before the next chunk (state = "
                "model.detach_state(state))."
            ),
            "modified by an inplace operation": (
                "That backward went on into the previous chunk, whose weights the "
                "optimizer has changed since (retain_graph=True does not help): detach "
                "the state before the next chunk (state = model.detach_state(state))."
            ),
        },
        verbose=verbose,
    )
