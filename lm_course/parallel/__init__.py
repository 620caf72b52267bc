"""Splitting training across devices (article 004 §3.3.3), simulated in one process.

* :mod:`.comm` -- exact collectives (all-reduce, all-gather, reduce-scatter, send) that
  log what each device would send;
* :mod:`.tensor` -- tensor parallelism: a matrix product split by columns or rows, and
  the Megatron MLP with one all-reduce;
* :mod:`.pipeline` -- pipeline parallelism: stages, micro-batches, the GPipe schedule
  and its bubble;
* :mod:`.zero` -- the memory arithmetic of ZeRO's sharded optimizer state.

Data parallelism runs for real, with several processes: see
:mod:`lm_course.training.distributed`.
"""

from .comm import Comm, Event
from .pipeline import bubble_fraction, gpipe_schedule, pipeline_forward, split_stages
from .tensor import (
    column_parallel_linear,
    row_parallel_linear,
    split_features,
    tensor_parallel_mlp,
)
from .zero import BYTES_PER_PARAM, zero_communication, zero_memory

__all__ = [
    "BYTES_PER_PARAM",
    "Comm",
    "Event",
    "bubble_fraction",
    "column_parallel_linear",
    "gpipe_schedule",
    "pipeline_forward",
    "row_parallel_linear",
    "split_features",
    "split_stages",
    "tensor_parallel_mlp",
    "zero_communication",
    "zero_memory",
]
