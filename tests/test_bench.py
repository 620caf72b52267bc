"""The benchmark command runs end to end and prints the keys the README documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lm_course.bench import table

KEYS = {
    "device",
    "train_tokens_per_s",
    "mfu",
    "budget_s",
    "val_loss_at_budget",
    "kv_cache_speedup",
}


def test_quick_bench_prints_one_json_object(shared_data: Path) -> None:
    env = {**os.environ, "LM_COURSE_DATA": str(shared_data), "LM_COURSE_PROGRESS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "lm_course", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record.keys() >= KEYS
    assert record["quick"] is True and record["device"].startswith("cpu")
    assert record["train_tokens_per_s"] > 0 and 0 < record["mfu"] < 1
    assert record["kv_cache_speedup"] > 1  # the cache must at least help
    assert record["recipe_seconds"] <= 1.25 * record["budget_s"]
    rendered = table(record)
    assert "| training tokens/s, reference config |" in rendered
