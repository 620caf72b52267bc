"""What stops a run safely: a diverged loss, Ctrl-C and SIGTERM.

* **Divergence.** Once a loss or a gradient norm is NaN or infinite, every later step is
  NaN too; a checkpoint of that state would only push the good ones out. The trainer
  stops with :class:`TrainingDiverged`. On the CPU reading a number costs nothing, so
  every step is checked, before the optimizer step (the model keeps the last finite
  weights). On a GPU reading a number waits for the device, so the first non-finite
  step is recorded on the device and read on the logging steps, where the loss is read
  anyway, and before every save: the run stops within ``log_every`` steps, names the
  first bad step, and never saves a non-finite checkpoint.
* **Signals.** Ctrl-C (SIGINT) and SIGTERM (what ``timeout``, ``docker stop`` and batch
  schedulers send) both become ``KeyboardInterrupt`` inside the trainer, which saves a
  checkpoint and re-raises; SIGTERM's is the subclass :class:`Terminated`. Neither cuts
  an optimizer step in half (:func:`interrupts_held`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Iterator

import torch
from torch import Tensor

from .distributed import DistInfo

_NONE = 2**62  # "no bad step yet": larger than any step number


def likely_causes(lr: float, precision: str, grad_clip: float | None) -> str:
    """What usually makes a run diverge, as it applies to these settings."""
    causes = [
        f"a learning rate too high for this model (lr={lr:g}: try it lower, or with "
        "more warmup_steps)"
    ]
    if precision != "float32":
        causes.append(f"too little precision ({precision}: try precision='float32')")
    if not grad_clip:
        causes.append("gradient clipping turned off (try grad_clip=1.0)")
    return "; ".join(causes)


class TrainingDiverged(RuntimeError):
    """The loss, the gradient norm or the weights became NaN or infinite; stopped."""

    def __init__(self, step: int, what: str, causes: str) -> None:
        """``what`` says what went wrong ("the loss is NaN or infinite"); ``causes``
        what to try (see :func:`likely_causes`)."""
        self.step = step
        super().__init__(
            f"training diverged at step {step}: {what}. Stopped without saving it; "
            f"the checkpoints already saved are intact. Likely causes: {causes}"
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C (save a checkpoint, then leave)."""

    signum = signal.SIGTERM


class FiniteGuard:
    """Watches the loss and the gradient norm of every step for NaN and infinity.

    Args:
        device: where the loss lives; on the CPU every step is checked at once.
        info: the processes training together; each decides from numbers that are the
            same on every rank, so all stop together, with no extra communication.
        causes: what the error names as likely causes (see :func:`likely_causes`).
    """

    def __init__(self, device: torch.device, info: DistInfo, causes: str) -> None:
        self.immediate = device.type == "cpu"
        self.info = info
        self.causes = causes
        self.first_bad = torch.full((), _NONE, dtype=torch.long, device=device)

    def observe(self, step: int, loss: Tensor, grad_norm: Tensor) -> None:
        """Record step ``step`` (1-based); on the CPU raise at once if it is not finite.

        With several processes only the gradient norm is watched here: it is computed
        from gradients averaged over the ranks, so every rank sees the same value and
        they all stop together. Their losses differ; they are checked once averaged, on
        the logging steps (:meth:`logged`).
        """
        local_loss = not self.info.enabled
        if self.immediate:
            if local_loss and not math.isfinite(loss.item()):
                self._fail(step, "the loss is NaN or infinite")
            if not math.isfinite(grad_norm.item()):
                self._fail(step, "the gradient norm is NaN or infinite")
            return
        bad = ~torch.isfinite(grad_norm)
        if local_loss:
            bad |= ~torch.isfinite(loss)
        first = bad & (self.first_bad == _NONE)
        self.first_bad = torch.where(
            first, torch.full_like(self.first_bad, step), self.first_bad
        )

    def logged(self, step: int, loss: float) -> None:
        """On a logging step: check the loss just read (averaged over the ranks)."""
        self.check()  # first: it names the first bad step, which may be earlier
        if not math.isfinite(loss):
            self._fail(step, "the loss is NaN or infinite")

    def check(self) -> None:
        """Raise :class:`TrainingDiverged` if a step recorded on the device was not
        finite (the CPU's steps were checked as they came)."""
        if self.immediate:
            return
        step = int(self.first_bad.item())
        if step != _NONE:
            self._fail(step, "the loss or the gradient norm is NaN or infinite")

    def _fail(self, step: int, what: str) -> None:
        raise TrainingDiverged(step, what, self.causes)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (as Ctrl-C raises
    ``KeyboardInterrupt``). Only the main thread can set signal handlers; elsewhere this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C and SIGTERM until the block is done, then raise them.

    An optimizer step interrupted half way would leave some weights updated and others
    not; a checkpoint of that state could not resume exactly. Only the main thread can
    change signal handlers, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    if any(handler is None for handler in previous.values()):
        yield  # a handler installed outside Python: leave it alone
        return
    received: list[int] = []
    for signum in _SIGNALS:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # A signal the process ignored before (SIG_IGN) stays ignored.
    wanted = [signum for signum in received if previous[signum] != signal.SIG_IGN]
    if signal.SIGINT in wanted:
        raise KeyboardInterrupt
    if wanted:
        raise Terminated
