"""A ledger of simulated communication: what each collective moves between devices.

The simulations of this package run every "device" in one process, as a list of tensors
(one per device). Whenever the devices would have to talk, they call a method of
:class:`Comm`, which computes the result exactly (a sum, a concatenation) and writes
down what the operation costs.

Costs are bytes *sent by each device* with the usual ring algorithms, for a full tensor
of ``S`` bytes on ``n`` devices (Patarasuk and Yuan, 2009):

* all-reduce (everyone ends with the sum): ``2 (n - 1) / n * S``, a reduce-scatter
  followed by an all-gather;
* all-gather (everyone ends with the concatenation of the ``n`` parts):
  ``(n - 1) / n * S``;
* reduce-scatter (device ``i`` ends with part ``i`` of the sum): ``(n - 1) / n * S``;
* point-to-point send (one device to the next, as in a pipeline): ``S`` from the
  sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Comm", "Event"]


@dataclass(frozen=True)
class Event:
    """One collective: its name, the bytes of the full tensor, the number of devices,
    and the bytes each device sends."""

    op: str
    tensor_bytes: int
    devices: int
    bytes_per_device: float


@dataclass
class Comm:
    """Exact collectives over lists of per-device tensors, with a log of their costs."""

    events: list[Event] = field(default_factory=list)

    def _log(self, op: str, full: Tensor, devices: int, factor: float) -> None:
        size = full.numel() * full.element_size()
        self.events.append(Event(op, size, devices, factor * size))

    def all_reduce(self, parts: list[Tensor]) -> list[Tensor]:
        """Every device gets the sum of all ``parts`` (same shape on every device)."""
        n = len(parts)
        total = torch.stack(parts).sum(0)
        self._log("all-reduce", total, n, 2 * (n - 1) / n)
        return [total.clone() for _ in parts]

    def all_gather(self, parts: list[Tensor], dim: int = -1) -> list[Tensor]:
        """Every device gets the ``parts`` concatenated along ``dim``."""
        n = len(parts)
        whole = torch.cat(parts, dim=dim)
        self._log("all-gather", whole, n, (n - 1) / n)
        return [whole.clone() for _ in parts]

    def reduce_scatter(self, parts: list[Tensor], dim: int = 0) -> list[Tensor]:
        """Device ``i`` gets chunk ``i`` (along ``dim``) of the sum of all ``parts``."""
        n = len(parts)
        total = torch.stack(parts).sum(0)
        self._log("reduce-scatter", total, n, (n - 1) / n)
        return [chunk.clone() for chunk in total.chunk(n, dim=dim)]

    def send(self, tensor: Tensor) -> Tensor:
        """One device hands ``tensor`` to another (a copy arrives)."""
        self._log("send", tensor, 2, 1.0)
        return tensor.clone()

    def total_bytes_per_device(self) -> float:
        """The sum of what one device sends over every logged operation."""
        return sum(event.bytes_per_device for event in self.events)

    def count(self, op: str) -> int:
        """How many operations named ``op`` were logged."""
        return sum(event.op == op for event in self.events)
