"""The benchmark runs end to end at a tiny size; timings are not checked.

It runs `python -m bench.run` as a subprocess from the repository root, where
the `bench` package lives, on SQLite and, when the test server is reachable,
on PostgreSQL in a schema of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = {
    "find_by_id",
    "find_by_user_id",
    "find_active_by_user",
    "find_by_user_and_provider",
    "find_expiring_soon",
    "claim_due_batch",
    "save_update",
    "save_new",
    "bulk_import",
}
READS = {"find_by_id", "find_by_user_id", "find_active_by_user"}
READS |= {"find_by_user_and_provider", "find_expiring_soon"}
EXPLAINED = READS | {"claim_due_batch"}


def run_bench(
    tmp_path: Path, backends: str, postgres_url: str | None = None
) -> dict[str, Any]:
    out = tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--size",
        "500",
        "--backends",
        backends,
        "--iterations",
        "6",
        "--warmup",
        "1",
        "--bulk-batch",
        "50",
        "--bulk-repeats",
        "2",
        "--crypto-samples",
        "3",
        "--crypto-batch",
        "10",
        "--sqlite-dir",
        str(tmp_path / "sqlite"),
        "--out",
        str(out),
    ]
    if postgres_url is not None:
        schema = f"lv_test_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        command += ["--postgres-url", postgres_url, "--postgres-schema", schema]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def check_run(run: dict[str, Any]) -> None:
    assert set(run["operations"]) == OPERATIONS
    for name, result in run["operations"].items():
        assert result["library"]["samples"] > 0, name
        assert result["raw"]["samples"] > 0, name
        assert result["ratio"] > 0, name
    assert set(run["plans"]) == EXPLAINED
    assert all(plan["plan"] for plan in run["plans"].values())
    claim = run["operations"]["claim_due_batch"]
    assert claim["limit"] == 100
    assert claim["due"] >= claim["limit"]


def test_bench_sqlite_measures_every_operation(tmp_path: Path) -> None:
    document = run_bench(tmp_path, "sqlite")

    assert [run["backend"] for run in document["runs"]] == ["sqlite"]
    check_run(document["runs"][0])
    assert document["encryption"]["encrypt_decrypt"]["median_us"] > 0
    assert document["encryption"]["encrypt_decrypt_with_json"]["median_us"] > 0
    assert document["targets"]


@pytest.mark.postgres
def test_bench_postgres_measures_every_operation(
    tmp_path: Path, postgres_base_url: str
) -> None:
    document = run_bench(tmp_path, "postgres", postgres_base_url)

    assert [run["backend"] for run in document["runs"]] == ["postgres"]
    check_run(document["runs"][0])
    assert document["environment"]["postgresql"]
