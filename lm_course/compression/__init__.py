"""Making a trained model smaller (article 004 §3.3.1): quantisation, pruning and
distillation, each written out in its own module.

* :mod:`.quantize` -- int8 weights with one scale per output channel; weight-only, or
  with int8 activations and integer matrix products (dynamic, W8A8);
* :mod:`.prune` -- magnitude pruning at a chosen sparsity, global or per layer;
* :mod:`.distill` -- the distillation loss of a student learning from a teacher.
"""

from .distill import DistillationLoss, distillation_loss
from .prune import apply_masks, magnitude_masks, prunable_weights, sparsity
from .quantize import (
    Int8Linear,
    QuantizedWeight,
    dequantize,
    int_matmul,
    quantize_model,
    quantize_per_channel,
    quantize_per_token,
    state_bytes,
)

__all__ = [
    "DistillationLoss",
    "Int8Linear",
    "QuantizedWeight",
    "apply_masks",
    "dequantize",
    "distillation_loss",
    "int_matmul",
    "magnitude_masks",
    "prunable_weights",
    "quantize_model",
    "quantize_per_channel",
    "quantize_per_token",
    "sparsity",
    "state_bytes",
]
