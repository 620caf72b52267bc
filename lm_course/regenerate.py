"""Re-execute notebooks and store clean, deterministic outputs (``make notebooks``).

Follows the course's recipe: one thread, progress bars off, no timing metadata, streams
coalesced, then ``nbstripout --keep-output`` so a second run gives no diff. The
wall-clock time of each notebook is recorded in ``book/generated/notebook_timings.json``
and rendered as a table in ``book/generated/notebook_timings.md``, which the preface
includes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TIMINGS_JSON = ROOT / "book" / "generated" / "notebook_timings.json"
TIMINGS_MD = ROOT / "book" / "generated" / "notebook_timings.md"


def machine_label() -> str:
    """Where notebooks ran: ``"2-core CPU (x86_64), 1 thread"`` or the GPU's name."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    threads = int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    return (
        f"{os.cpu_count()}-core CPU ({platform.machine()}), "
        f"{threads} thread{'s' if threads > 1 else ''}"
    )


def execute(notebook: Path) -> float:
    """Run one notebook in place and clean it; return the seconds it took to execute."""
    jupyter = [sys.executable, "-m", "jupyter"]
    env = {
        **os.environ,
        "LM_COURSE_PROGRESS": "0",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    start = time.perf_counter()
    subprocess.run(
        [
            *jupyter,
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--inplace",
            "--ExecutePreprocessor.record_timing=False",
            "--ExecutePreprocessor.store_widget_state=False",
            "--ExecutePreprocessor.timeout=1800",
            "--ExecutePreprocessor.kernel_name=python3",
            str(notebook),
        ],
        check=True,
        env=env,
    )
    seconds = time.perf_counter() - start
    subprocess.run(
        [
            *jupyter,
            "nbconvert",
            "--to",
            "notebook",
            "--inplace",
            "--coalesce-streams",
            str(notebook),
        ],
        check=True,
        env=env,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            "metadata.language_info.version",
            str(notebook),
        ],
        check=True,
        env=env,
    )
    return seconds


def record(timings: dict[str, float]) -> None:
    """Merge new timings into the JSON record and rewrite the Markdown table."""
    TIMINGS_JSON.parent.mkdir(parents=True, exist_ok=True)
    table = json.loads(TIMINGS_JSON.read_text()) if TIMINGS_JSON.exists() else {}
    label = machine_label()
    for name, seconds in timings.items():
        table.setdefault(name, {})[label] = round(seconds, 1)
    _save_record(table)
    write_table()


def _save_record(table: dict[str, dict[str, float]]) -> None:
    TIMINGS_JSON.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")


def forget(name: str) -> None:
    """Drop this machine's recorded time of notebook ``name`` before it is re-run.

    The old time is about to be replaced; left in place, it would make the notebook's
    own budget check (:func:`lm_course.notebook.show_run_time`) fail on a figure the
    run is there to correct.
    """
    if not TIMINGS_JSON.exists():
        return
    table = json.loads(TIMINGS_JSON.read_text())
    if table.get(name, {}).pop(machine_label(), None) is not None:
        _save_record(table)


def write_table() -> None:
    """Render ``notebook_timings.json`` as the Markdown table the preface includes.

    One column per machine the notebooks were timed on; a GPU column appears once the
    notebooks have been regenerated on a GPU.
    """
    table = json.loads(TIMINGS_JSON.read_text())
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        table.setdefault(notebook.name, {})  # a chapter not timed yet still gets a row
    machines = sorted({m for row in table.values() for m in row})
    lines = [
        "| notebook | " + " | ".join(machines) + " |",
        "|---|" + "---:|" * len(machines),
    ]
    for name in sorted(table):
        cells = [
            f"{table[name][m]:.0f} s" if m in table[name] else "not measured"
            for m in machines
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    TIMINGS_MD.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lm_course.regenerate notebooks/NN_name.ipynb ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not update the timing table in book/generated/",
    )
    args = parser.parse_args(argv)
    timings = {}
    for notebook in args.notebooks:
        if not notebook.is_file():
            parser.error(f"no notebook at {notebook}")
        if not args.no_record:
            forget(notebook.name)
        seconds = execute(notebook)
        timings[notebook.name] = seconds
        print(f"{notebook}: {seconds:.1f} s", flush=True)
    if not args.no_record:
        record(timings)


if __name__ == "__main__":
    main()
