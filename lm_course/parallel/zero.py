"""ZeRO: the memory of data-parallel training, and what sharding it saves.

Plain data parallelism keeps a full copy of everything on every device. With mixed
precision and Adam, Rajbhandari et al. (2020) count per parameter:

* 2 bytes of 16-bit weights (what the forward and backward passes read),
* 2 bytes of 16-bit gradients,
* 12 bytes of optimizer state: a 32-bit master copy of the weights and Adam's two
  32-bit moments.

16 bytes per parameter, on each of the ``n`` devices. ZeRO shards them instead:
stage 1 splits the optimizer state ``n`` ways, stage 2 the gradients too, stage 3 the
weights too. What each device must still hold is simple arithmetic
(:func:`zero_memory`); activations come on top and are not sharded by ZeRO.

Communication: data parallelism all-reduces the gradients, about ``2 P`` numbers sent
per device per step for ``P`` parameters (ring algorithm). Stages 1 and 2 replace it by
a reduce-scatter of the gradients and an all-gather of the updated weights -- the same
``2 P``; stage 3 also gathers the weights again for the backward pass, ``3 P``.
"""

from __future__ import annotations

from ..checks import check_int, check_number

__all__ = ["BYTES_PER_PARAM", "zero_communication", "zero_memory"]

#: Bytes per parameter in mixed-precision Adam training (weights, gradients, optimizer).
BYTES_PER_PARAM = {"weights": 2, "gradients": 2, "optimizer": 12}


def zero_memory(
    n_params: float,
    n_devices: int,
    stage: int,
    bytes_per_param: dict[str, float] | None = None,
) -> dict[str, float]:
    """Bytes each device holds for weights, gradients and optimizer state, and their
    ``"total"``, under ZeRO ``stage`` 0 (plain data parallelism) to 3."""
    check_number("n_params", n_params, minimum=0)
    check_int("n_devices", n_devices, minimum=1)
    check_int("stage", stage, minimum=0, maximum=3)
    sizes = dict(BYTES_PER_PARAM if bytes_per_param is None else bytes_per_param)
    sharded = {
        "optimizer": stage >= 1,
        "gradients": stage >= 2,
        "weights": stage >= 3,
    }
    memory = {
        part: n_params * sizes[part] / (n_devices if sharded[part] else 1)
        for part in ("weights", "gradients", "optimizer")
    }
    memory["total"] = sum(memory.values())
    return memory


def zero_communication(n_params: float, stage: int) -> float:
    """Numbers each device sends per training step (ring collectives, many devices):
    ``2 P`` for data parallelism and ZeRO stages 1-2, ``3 P`` for stage 3."""
    check_number("n_params", n_params, minimum=0)
    check_int("stage", stage, minimum=0, maximum=3)
    return (3 if stage == 3 else 2) * n_params
