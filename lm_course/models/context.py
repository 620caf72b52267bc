"""Reading more text than a model was trained on: longer contexts, measured.

A GPT trained on windows of ``block_size`` tokens has only ever seen positions
``0 .. block_size - 1``. :func:`extend_context` rebuilds it for a longer context with
the same weights -- possible for positions that are computed (sinusoidal, RoPE, ALiBi),
impossible for a learned table, which has no vector past its last row -- and can turn
on RoPE position interpolation or a sliding window. :func:`loss_by_position` then
measures how well it predicts at each position of the longer windows.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from lm_course.checks import check_int, check_token_ids
from lm_course.models.gpt import GPT

__all__ = ["extend_context", "loss_by_position"]


def extend_context(
    model: GPT,
    block_size: int,
    *,
    rope_scale: float | None = None,
    window: int | None = None,
) -> GPT:
    """A copy of ``model`` that reads up to ``block_size`` tokens, same weights.

    Args:
        model: a trained :class:`~lm_course.models.gpt.GPT`.
        block_size: the new longest context.
        rope_scale: RoPE position interpolation (positions divided by it); ``None``
            keeps the model's own. Only for ``positional="rope"``.
        window: read with a sliding window of this many positions (each query sees
            only that many keys, as in training when it is the trained length);
            ``None`` keeps the model's own attention pattern.

    Returns:
        A new GPT on the model's device, in the model's train/eval mode. The model's
        random state is left alone (building the copy draws no random numbers from
        the caller's generator).

    A model with learned positions cannot go past its table: asking for more raises a
    ``ValueError`` that says so.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    check_int("block_size", block_size, minimum=1)
    c = model.config
    state = model.state_dict()
    if c.positional == "learned":
        if block_size > c.block_size:
            raise ValueError(
                f"this model learned one position vector for each of its "
                f"{c.block_size} positions; there is none for position {c.block_size} "
                f"or later, so it cannot read {block_size} tokens. Computed positions "
                "(sinusoidal, rope, alibi) can be extended; learned ones must be "
                "trained further on longer windows"
            )
        state["pos_emb.weight"] = state["pos_emb.weight"][:block_size]
    scale = c.rope_scale if rope_scale is None else rope_scale
    config = dataclasses.replace(c, block_size=block_size, rope_scale=scale)
    if window is not None:
        config = dataclasses.replace(config, window=window)
    with torch.random.fork_rng(devices=[]):
        longer = GPT(config)
    longer.load_state_dict(state)
    return longer.to(model.tok_emb.weight.device).train(model.training)


@torch.no_grad()
def loss_by_position(
    model: GPT, ids: Tensor, length: int, *, batch_size: int = 8
) -> Tensor:
    """Mean next-token loss at each position of consecutive windows of ``length``.

    Args:
        model: a GPT with ``block_size >= length``.
        ids: 1-D token ids ``(n,)``; cut into ``(n - 1) // length`` windows of
            ``length`` inputs, each followed by its targets.
        length: the context length to evaluate at.
        batch_size: windows per forward pass.

    Returns:
        Float ``(length,)``: entry ``t`` is the mean cross-entropy (nats) of predicting
        the token after position ``t``, over all windows. Its mean is the loss at this
        context length; how it grows with ``t`` shows where the model stops coping.
    """
    check_int("length", length, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    if not isinstance(ids, Tensor) or ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of token ids, got {ids!r:.60}")
    n_windows = (ids.numel() - 1) // length
    if n_windows < 1:
        raise ValueError(
            f"ids holds {ids.numel()} tokens: not enough for one window of {length} "
            "inputs and its targets"
        )
    device = model.tok_emb.weight.device
    check_token_ids(ids[None], model.config.vocab_size, "ids", device=ids.device)
    inputs = ids[: n_windows * length].view(n_windows, length)
    targets = ids[1 : n_windows * length + 1].view(n_windows, length)
    was_training = model.training
    model.eval()
    total = torch.zeros(length, dtype=torch.float64)
    try:
        for start in range(0, n_windows, batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.transpose(1, 2).float(), y, reduction="none")
            total += loss.sum(dim=0).double().cpu()
    finally:
        model.train(was_training)
    return (total / n_windows).float()
