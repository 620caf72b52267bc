"""Argument checks, in one place, with one wording.

Every public boundary of the package (a config, a model's ``forward``, a command) checks
what it is given once, here, and nowhere deeper. A wrong *type* raises ``TypeError``, a
wrong *value* raises ``ValueError``, and both read the same everywhere::

    GPTConfig.dropout must be a finite number >= 0 and < 1, got '0.1' (str)

``name`` is what the reader wrote: ``"GPTConfig.dropout"``, ``"idx"``, ``"--out"``.
Plain arguments are checked in :mod:`.scalars`, tensors in :mod:`.tensors`.
"""

from .scalars import (
    FromDict,
    check_bool,
    check_choice,
    check_int,
    check_number,
    config_from_dict,
    describe,
)
from .tensors import (
    check_attention_call,
    check_bias,
    check_hidden,
    check_kv_cache,
    check_logits,
    check_mask,
    check_qkv,
    check_targets,
    check_token_ids,
    tracing,
)

__all__ = [
    "FromDict",
    "check_attention_call",
    "check_bias",
    "check_bool",
    "check_choice",
    "check_hidden",
    "check_int",
    "check_kv_cache",
    "check_logits",
    "check_mask",
    "check_number",
    "check_qkv",
    "check_targets",
    "check_token_ids",
    "config_from_dict",
    "describe",
    "tracing",
]
