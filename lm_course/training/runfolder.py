"""The run folder: its layout, its lock, and finding its newest intact checkpoint.

Layout::

    checkpoint_dir/
        latest.json                  {"checkpoint": "step-000500", "step": 500}
        step-000500/
            model.safetensors        the weights
            optimizer.safetensors    AdamW's moments and step counts, one tensor each
            state.json               step, config, history, meta, counters
        .lock, .lock.owner           held by the one run that writes here

Rules that keep a run's work safe:

* **One writer.** A training run holds an OS file lock on the folder for as long as it
  runs; the operating system releases it when the process ends, even by a crash. A
  second run on the same folder is refused with :class:`RunFolderBusy`, naming the
  process that holds it.
* **Pointers stay inside.** ``latest.json`` (and any file a checkpoint names) must name
  something inside the folder: no ``..``, no absolute path.
* **Damage is survivable.** A checkpoint whose files cannot be read (a truncated
  ``model.safetensors``, broken JSON) is skipped with a warning naming it, and the
  newest intact one is used instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from safetensors import safe_open

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"
LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"
FORMAT_VERSION = 1
_STEP_PREFIX = "step-"
# Temporary names used while writing: left behind only by a crash.
_LEFTOVER_PREFIXES = (".tmp-", ".old-")


class RunFolderError(ValueError):
    """The run folder cannot be used: it is a file, not writable, or points outside."""


class RunFolderBusy(RuntimeError):
    """Another process is training in this run folder."""


class DamagedCheckpoint(ValueError):
    """A checkpoint's files are missing, truncated or not valid JSON."""


def checkpoint_name(step: int) -> str:
    """Folder name for ``step``: ``step-000500``."""
    return f"{_STEP_PREFIX}{step:06d}"


def _step_of(path: Path) -> int | None:
    digits = path.name.removeprefix(_STEP_PREFIX)
    if path.name.startswith(_STEP_PREFIX) and digits.isdigit() and digits.isascii():
        return int(digits)
    return None


def step_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """Every ``step-NNNNNN`` folder in ``run_dir``, intact or not, sorted by step."""
    found = []
    for path in run_dir.iterdir():
        step = _step_of(path)
        if step is not None and path.is_dir():
            found.append((step, path))
    return sorted(found)


def inside(run_dir: Path, name: Any, source: Path) -> Path:
    """``run_dir / name``, refusing a ``name`` (read from ``source``) that leaves it."""
    if (
        not isinstance(name, str)
        or not name
        or Path(name).is_absolute()
        or ".." in Path(name).parts
        or "\\" in name
    ):
        raise RunFolderError(
            f"{source} names {name!r}, which is not a path inside the run folder "
            f"{run_dir}; pointers in a run folder must be relative names such as "
            "'step-000500'. Fix or delete the file."
        )
    return run_dir / name


# --- the lock -------------------------------------------------------------------------


def check_run_folder(path: str | os.PathLike[str]) -> Path:
    """Refuse a run folder that is a file or lies below one; nothing is written."""
    path = Path(path)
    for part in [path, *path.parents]:
        if part.exists() and not part.is_dir():
            where = "is a file" if part == path else f"lies below the file {part}"
            raise RunFolderError(
                f"the run folder {path} {where}; choose a folder for the checkpoints"
            )
    return path


@contextlib.contextmanager
def lock_run_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Create the run folder if needed and hold its lock while the block runs."""
    run_dir = check_run_folder(path)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(run_dir / LOCK_FILE))
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderBusy(
            f"the run folder {run_dir} is in use by {_owner(run_dir)}; wait for that "
            "run to finish (or stop it), or choose another folder"
        ) from None
    except OSError as error:  # no permission, a read-only disk ...
        raise RunFolderError(
            f"cannot write in the run folder {run_dir} ({error.strerror or error}); "
            "choose a folder you can write to"
        ) from None
    owner = run_dir / OWNER_FILE
    try:
        owner.write_text(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n",
            encoding="utf-8",
        )
        yield run_dir
    finally:
        # Removed before the release, so it never names a process that let go.
        owner.unlink(missing_ok=True)
        lock.release()


def _owner(run_dir: Path) -> str:
    """'process 1234 on host' from the owner file, as far as it can be read."""
    try:
        data = json.loads((run_dir / OWNER_FILE).read_text(encoding="utf-8"))
        return f"process {int(data['pid'])} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its id is not recorded yet)"


def clean_leftovers(run_dir: Path) -> None:
    """Delete temporary files and folders a crash left behind (call with the lock)."""
    for path in run_dir.iterdir():
        if path.name.startswith(_LEFTOVER_PREFIXES):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def write_run_files(
    run_dir: Path,
    files: Mapping[str, Callable[[Path], None]],
    *,
    must_match: bool,
) -> None:
    """Write each ``name -> writer(path)`` into the run folder, atomically.

    With ``must_match`` (the run resumes from a checkpoint), a file already there that
    differs from the new one is refused before anything is replaced: the checkpoints
    belong to it.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for name, writer in files.items():
            final = inside(run_dir, name, Path("files"))
            fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.name}-", dir=run_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            written.append((tmp, final))
            writer(tmp)
            if (
                must_match
                and final.is_file()
                and final.read_bytes() != tmp.read_bytes()
            ):
                raise RunFolderError(
                    f"{final} differs from the {name} of this run; the checkpoints in "
                    f"{run_dir} were trained with the one there. Resume with the same "
                    "setup, or start over in a new folder"
                )
        for tmp, final in written:
            os.replace(tmp, final)
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)


# --- finding the newest intact checkpoint ---------------------------------------------


def read_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's ``state.json``, checked: a JSON object of our format, with a step.

    Raises :class:`DamagedCheckpoint` naming the file, the field and what to do.
    """
    path = folder / STATE_FILE
    advice = (
        "Delete that folder to use the checkpoint before it, or train again in a new "
        "folder"
    )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedCheckpoint(f"{path} is missing. {advice}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedCheckpoint(
            f"{path} is not valid JSON ({error}). {advice}"
        ) from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint(f"{path} must hold a JSON object. {advice}")
    if state.get("format") != FORMAT_VERSION:
        raise DamagedCheckpoint(
            f"{path} has checkpoint format {state.get('format')!r} (field 'format'); "
            f"this version of lm_course reads format {FORMAT_VERSION}. {advice}"
        )
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise DamagedCheckpoint(
            f"{path} has no valid field 'step' (got {step!r}). {advice}"
        )
    return state


def check_intact(folder: Path) -> dict[str, Any]:
    """Read a checkpoint's state and the headers of its weight files; return the state.

    Reading a safetensors header checks that the file is as long as its header says, so
    a file cut short by a crash or a full disk is caught here, before any loading.
    """
    state = read_state(folder)
    for name in (MODEL_FILE, OPTIMIZER_FILE):
        path = folder / name
        if not path.is_file():
            if name == MODEL_FILE:
                raise DamagedCheckpoint(f"{path} is missing")
            continue
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as error:  # the library's own error type varies by version
            raise DamagedCheckpoint(f"{path} cannot be read ({error})") from None
    return state


def _pointer(run_dir: Path) -> Path | None:
    """The folder ``latest.json`` names, or None (with a warning if it is broken)."""
    pointer = run_dir / LATEST_FILE
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        warnings.warn(
            f"{pointer} cannot be read ({error!r}); looking for the newest checkpoint "
            "instead",
            stacklevel=3,
        )
        return None
    return inside(run_dir, name, pointer)


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    """The newest intact checkpoint folder in ``checkpoint_dir``; None if there is none.

    Follows ``latest.json`` (checkpoints with a higher step than it names are left over
    from an earlier run), else takes the highest step. A damaged checkpoint is skipped
    with a warning naming it; if every checkpoint is damaged, :class:`DamagedCheckpoint`
    says so rather than letting a new run start over on top of them.
    """
    run_dir = Path(checkpoint_dir)
    if not run_dir.is_dir():
        return None
    named = _pointer(run_dir)
    folders = [path for _, path in reversed(step_dirs(run_dir))]
    if named is not None and named in folders:
        folders = folders[folders.index(named) :]
    problems = []
    for folder in folders:
        try:
            check_intact(folder)
        except DamagedCheckpoint as error:
            problems.append(str(error))
            warnings.warn(
                f"skipping the damaged checkpoint {folder}: {error}", stacklevel=2
            )
            continue
        return folder
    if problems:
        raise DamagedCheckpoint(
            f"every checkpoint in {run_dir} is damaged ({'; '.join(problems)}); move "
            "them away to start over in this folder"
        )
    return None
