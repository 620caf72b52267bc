"""Checks of tensors: token ids, targets, attention inputs, caches and logits.

Type, shape, dtype and device checks read only a tensor's metadata: they cost no time
on a GPU and vanish from a ``torch.compile`` graph. Checks of *values* (is every id in
the vocabulary?) read every element, which waits for the GPU and breaks a compiled
graph; they run in eager mode only (see :func:`tracing`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from .scalars import check_int, describe


def tracing() -> bool:
    """True while ``torch.compile`` traces the code, where value checks are skipped.

    A compiled training step then has no host sync and no graph break; the same call in
    eager mode (a reader in a notebook, on a CPU or a GPU) still gets every check.
    """
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())


def _reads_values(tensor: Tensor) -> bool:
    # A meta tensor has a shape but no values to read.
    return not tracing() and tensor.device.type != "meta" and tensor.numel() > 0


def _check_class_ids(ids: Any, name: str, what: str) -> None:
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a tensor of {what}, got {describe(ids)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer {what} (torch.long), got dtype {ids.dtype}; "
            f"convert with {name}.long() if they are whole numbers"
        )


def check_token_ids(
    idx: Any,
    vocab_size: int,
    name: str = "idx",
    *,
    device: torch.device | None = None,
) -> Tensor:
    """``idx`` must be an integer tensor ``(batch, seq)`` of ids in ``[0, vocab_size)``.

    ``device``: the model's device, which the ids must be on. The range check reads
    every id; it is skipped while ``torch.compile`` traces (see :func:`tracing`).
    """
    _check_class_ids(idx, name, "token ids")
    if idx.dim() != 2:
        hint = (
            f"; add a batch dimension with {name}.unsqueeze(0)"
            if idx.dim() == 1
            else ""
        )
        raise ValueError(
            f"{name} must have shape (batch, seq), got {tuple(idx.shape)}{hint}"
        )
    if idx.size(0) == 0 or idx.size(1) == 0:
        raise ValueError(
            f"{name} must hold at least one row and one token, got shape "
            f"{tuple(idx.shape)}"
        )
    if device is not None and idx.device != device:
        raise ValueError(
            f"{name} is on {idx.device} but the model is on {device}; move the ids "
            f"with {name}.to({str(device)!r})"
        )
    if _reads_values(idx):
        low, high = (int(v) for v in torch.aminmax(idx))  # one pass over the ids
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains token id {bad}, outside the vocabulary "
                f"[0, {vocab_size - 1}] (vocab_size={vocab_size}); was it encoded with "
                "a different tokenizer?"
            )
    return idx


def check_targets(
    targets: Any,
    shape: tuple[int, ...],
    n_classes: int,
    name: str = "targets",
    *,
    ignore_index: int = -100,
) -> Tensor:
    """Class ids of the given shape, each in ``[0, n_classes)`` or ``ignore_index``.

    Checked like inputs, so that a float tensor is not silently truncated to integers
    and an id out of range gives this message, not an ``IndexError`` inside the loss (or
    a device-side assert on a GPU). The range check is skipped while compiling.
    """
    _check_class_ids(targets, name, "class ids")
    if tuple(targets.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {tuple(targets.shape)}"
        )
    if _reads_values(targets):
        # Ignored positions count as class 0: one pass, no data-dependent shapes.
        kept = targets.masked_fill(targets == ignore_index, 0)
        low, high = (int(v) for v in torch.aminmax(kept))
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains {bad}, outside [0, {n_classes - 1}] "
                f"(use {ignore_index} for positions to ignore)"
            )
    return targets


def _shape(dims: Iterable[Any]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def check_hidden(x: Any, d_model: int, dtype: torch.dtype, name: str = "x") -> Tensor:
    """Vectors ``(batch, seq, d_model)`` in the module's ``dtype`` (autocast aside).

    A float64 input to a float32 module is refused rather than cast: the module's dtype
    decides the arithmetic, and a silent cast would hide which one ran.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {describe(x)}")
    if x.dim() != 3 or x.size(-1) != d_model:
        raise ValueError(
            f"{name} must have shape (batch, seq, d_model={d_model}), got "
            f"{tuple(x.shape)}"
        )
    if x.size(0) == 0 or x.size(1) == 0:
        raise ValueError(
            f"{name} must hold at least one row and one position, got shape "
            f"{tuple(x.shape)}"
        )
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} has dtype {x.dtype} but the module's weights are {dtype}; convert "
            f"the input with {name}.to({dtype}) or the module with .to({x.dtype})"
        )
    return x


def check_qkv(q: Any, k: Any, v: Any) -> tuple[int, int, int, int]:
    """Queries, keys and values that fit together; returns the score shape.

    ``q`` ``(batch, heads, q_len, d_head)``, ``k`` ``(batch, heads, k_len, d_head)``
    and ``v`` ``(batch, heads, k_len, d_v)``; the result is
    ``(batch, heads, q_len, k_len)``.
    """
    tensors = {"q": q, "k": k, "v": v}
    for name, t in tensors.items():
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point tensor, got {describe(t)}"
            )
    shapes = ", ".join(str(tuple(t.shape)) for t in tensors.values())
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"q, k and v must be 4-D (batch, heads, seq, d_head); got shapes {shapes}. "
            f"Use split_heads() to go from (batch, seq, d_model) to this layout."
        )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if not q.shape[:2] == k.shape[:2] == v.shape[:2] or k.size(2) != v.size(2):
        raise ValueError(
            f"q, k and v must agree in batch and heads, and k and v in length: got "
            f"shapes {shapes}"
        )
    if q.size(-1) != k.size(-1):
        raise ValueError(
            f"q and k must have the same width d_head to be compared, got "
            f"{q.size(-1)} and {k.size(-1)}"
        )
    if q.size(2) == 0 or k.size(2) == 0:
        raise ValueError(
            f"q and k must hold at least one position each, got shapes {shapes}"
        )
    return (q.size(0), q.size(1), q.size(2), k.size(2))


def _check_broadcasts(name: str, tensor: Tensor, shape: tuple[int, ...]) -> None:
    try:
        fits = tuple(torch.broadcast_shapes(tensor.shape, shape)) == tuple(shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} must broadcast to (batch, heads, q_len, k_len) = {_shape(shape)}, "
            f"got shape {tuple(tensor.shape)}"
        )


def check_mask(
    mask: Any,
    shape: tuple[int, ...],
    name: str = "mask",
    bias_name: str = "attn_bias",
) -> Tensor:
    """A boolean mask (``True`` = may attend) broadcastable to ``shape``.

    The one rule for every attention path: masks are boolean, additive float biases go
    through ``bias_name``. A 0/1 float mask is refused, never added to the scores.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = f"dtype {mask.dtype}" if isinstance(mask, Tensor) else describe(mask)
        raise TypeError(
            f"{name} must be a boolean tensor (True = may attend), got {got}; a 0/1 "
            f"mask converts with {name}.bool(), an additive float mask (0 and -inf) "
            f"goes in {bias_name}= instead"
        )
    _check_broadcasts(name, mask, shape)
    return mask


def check_bias(bias: Any, shape: tuple[int, ...], name: str = "attn_bias") -> Tensor:
    """An additive float score bias broadcastable to ``shape`` (ALiBi, for example)."""
    if not isinstance(bias, Tensor) or not bias.is_floating_point():
        got = f"dtype {bias.dtype}" if isinstance(bias, Tensor) else describe(bias)
        raise TypeError(
            f"{name} must be a floating-point tensor added to the scores, got {got}; "
            "a boolean mask goes in mask= instead"
        )
    _check_broadcasts(name, bias, shape)
    return bias


def check_kv_cache(
    cache: Any,
    shape: tuple[int | None, ...],
    dtype: torch.dtype,
    device: torch.device,
    name: str = "cache",
) -> None:
    """A key/value cache laid out ``(n_layer, batch, heads, max_len, d_head)``.

    ``shape`` holds what the caller needs, ``None`` where anything goes.
    """
    k = getattr(cache, "k", None)
    if not isinstance(k, Tensor) or k.dim() != 5:
        raise TypeError(
            f"{name} must be a KVCache from model.make_cache(batch_size), got "
            f"{describe(cache)}"
        )
    if any(want is not None and want != have for want, have in zip(shape, k.shape)):
        want = _shape("any" if d is None else d for d in shape)
        raise ValueError(
            f"{name} does not fit: its keys are (n_layer, batch, heads, max_len, "
            f"d_head) = {tuple(k.shape)}, this call needs {want}; was it made for "
            "another model or batch? Make one with model.make_cache(batch_size)"
        )
    if k.dtype != dtype or k.device != device:
        raise ValueError(
            f"{name} holds {k.dtype} on {k.device}, but the model is {dtype} on "
            f"{device}; make the cache after moving the model, with "
            "model.make_cache(batch_size)"
        )


def check_attention_call(
    attn: Any,
    x: Any,
    context: Any,
    mask: Any,
    attn_bias: Any,
    cache: Any,
    layer_idx: Any,
) -> None:
    """One call of :class:`~lm_course.attention.MultiHeadAttention` ``attn``.

    ``x`` ``(batch, q_len, d_model)``; ``context`` ``(batch, k_len, d_model)`` for
    cross-attention only; ``mask`` and ``attn_bias`` broadcastable to
    ``(batch, heads, q_len, k_len)``, where ``k_len`` counts the cached keys too.
    """
    weight = attn.proj.weight
    check_hidden(x, attn.d_model, weight.dtype, "x")
    k_len = x.size(1)
    if attn.is_cross:
        if context is None:
            raise ValueError("cross-attention needs context= (the encoder output)")
        check_hidden(context, attn.d_model, weight.dtype, "context")
        if context.size(0) != x.size(0):
            raise ValueError(
                f"context must have the batch size of x ({x.size(0)}), got shape "
                f"{tuple(context.shape)}"
            )
        k_len = context.size(1)
    elif context is not None:
        raise ValueError("context= is only for cross-attention (is_cross=True)")
    if cache is not None:
        # Grouped-query attention caches fewer key/value heads than it has queries.
        kv_heads = getattr(attn, "n_kv_heads", attn.n_heads)
        need = (None, x.size(0), kv_heads, None, attn.d_head)
        check_kv_cache(cache, need, weight.dtype, weight.device)
        check_int("layer_idx", layer_idx, minimum=0, maximum=cache.k.size(0) - 1)
        k_len += cache.pos
    shape = (x.size(0), attn.n_heads, x.size(1), k_len)
    if mask is not None:
        check_mask(mask, shape, "mask")
    if attn_bias is not None:
        check_bias(attn_bias, shape, "attn_bias")


def check_logits(logits: Tensor, name: str = "logits", hint: str = "") -> Tensor:
    """Logits ``(batch, vocab)`` that a softmax can turn into a distribution.

    Every row must be free of NaN and ``+inf`` and keep at least one finite entry (a row
    of ``-inf`` forbids every token). One pass over the logits, one wait for the GPU.
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got {describe(logits)}"
        )
    if logits.dim() == 0 or logits.size(-1) == 0:
        raise ValueError(
            f"{name} must have shape (batch, vocab), got {tuple(logits.shape)}"
        )
    if not _reads_values(logits):
        return logits
    rows = logits.reshape(-1, logits.size(-1))
    finite = torch.isfinite(rows)
    usable = (finite | (rows == -math.inf)).all(-1) & finite.any(-1)
    if bool(usable.all()):
        return logits
    row = int((~usable).nonzero()[0, 0])
    values = rows[row]
    if values.isnan().any():
        problem = "contains NaN: the model's output is broken (a diverged run?)"
    elif (values == math.inf).any():
        problem = "contains +inf"
    else:
        problem = "is -inf everywhere: every token is ruled out"
    raise ValueError(f"{name} row {row} {problem}; cannot sample from it{hint}")
