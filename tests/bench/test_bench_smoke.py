"""The benchmark harness runs end to end at tiny sizes, so it cannot rot between full runs.
It asserts that every comparison produced numbers, never how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_bench_smoke_writes_every_comparison(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    ids = [r["id"] for r in data["results"]]
    assert ids == ["1", "3", "1", "2", "4", "9", "5", "6a", "6b", "7", "8"]
    for comparison in data["results"]:
        for metric in comparison["metrics"].values():
            assert metric["ebr"]["median"] > 0
            if metric["bare"] is not None:
                assert metric["bare"]["median"] > 0 and metric["ratio"] > 0
    assert "| 1 |" in (tmp_path / "latest.md").read_text()


def test_bench_runs_only_the_rows_asked_for(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--rows", "6a,7", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert [r["id"] for r in data["results"]] == ["6a", "7"]
