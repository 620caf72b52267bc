"""``make notebooks`` bookkeeping: the timing record it keeps for the book."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_course import regenerate


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "notebook_timings.json"
    monkeypatch.setattr(regenerate, "TIMINGS_JSON", path)
    monkeypatch.setattr(regenerate, "TIMINGS_MD", tmp_path / "notebook_timings.md")
    monkeypatch.setattr(regenerate, "machine_label", lambda: "2-core CPU, 1 thread")
    return path


def test_a_rerun_forgets_only_this_machines_old_time(record_file: Path) -> None:
    """The old time of a notebook being re-run must not trip its own budget check;
    other notebooks and other machines keep theirs."""
    record_file.write_text(
        json.dumps(
            {
                "04_transformer.ipynb": {"2-core CPU, 1 thread": 360.0, "GPU: H100": 4},
                "05_pretraining.ipynb": {"2-core CPU, 1 thread": 476.5},
            }
        )
    )
    regenerate.forget("04_transformer.ipynb")
    regenerate.forget("06_applications.ipynb")  # never timed: nothing to drop
    assert json.loads(record_file.read_text()) == {
        "04_transformer.ipynb": {"GPU: H100": 4},
        "05_pretraining.ipynb": {"2-core CPU, 1 thread": 476.5},
    }


def test_record_merges_new_times_and_renders_a_row_per_notebook(
    record_file: Path,
) -> None:
    regenerate.record({"04_transformer.ipynb": 251.04})
    assert json.loads(record_file.read_text()) == {
        "04_transformer.ipynb": {"2-core CPU, 1 thread": 251.0}
    }
    table = regenerate.TIMINGS_MD.read_text()
    assert "| `04_transformer.ipynb` | 251 s |" in table
    for notebook in Path("notebooks").glob("*.ipynb"):  # untimed ones get a row too
        assert f"`{notebook.name}`" in table


def test_forget_without_a_record_does_nothing(record_file: Path) -> None:
    regenerate.forget("04_transformer.ipynb")
    assert not record_file.exists()
