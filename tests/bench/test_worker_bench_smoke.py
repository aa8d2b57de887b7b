"""The worker benchmark and its token server run end to end at a tiny size.

Only the presence of numbers is checked, never their size: timings belong in
benchmark records, not in tests. Each test runs a `bench` module as a
subprocess from the repository root, where the `bench` package lives.
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
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
DUE = 50
# Seconds one benchmark subprocess may take. Starting a worker and the token
# server costs a few seconds of imports on a busy machine.
SUBPROCESS_TIMEOUT = 300


def run_module(module: str, *options: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", module, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def run_worker_bench(out: Path, *options: str) -> dict[str, Any]:
    run_module(
        "bench.worker_bench",
        "--due",
        str(DUE),
        "--workers",
        "1",
        "--repeats",
        "1",
        "--out",
        str(out),
        *options,
    )
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def check_throughput(document: dict[str, Any]) -> None:
    [run] = document["runs"]
    assert run["workers"] == 1
    assert run["refreshed"] == DUE
    assert run["events"] == {"refreshed": DUE}
    assert run["outcomes"] == [{"refreshed": DUE}]
    assert run["refreshes_per_second_per_process"] > 0
    assert run["worker_cpu_ms_per_refresh"] > 0
    assert run["peak_rss_mib"][0] > 0
    assert document["summary"]["1"]["runs"] == 1
    assert document["targets"]


def test_worker_bench_sqlite_produces_numbers(tmp_path: Path) -> None:
    document = run_worker_bench(
        tmp_path / "worker.json",
        "--backend",
        "sqlite",
        "--memory-due",
        "40",
        "--memory-compare-due",
        "20",
        "--memory-seconds",
        "30",
    )

    assert document["backend"] == "sqlite"
    check_throughput(document)
    memory = document["memory"]
    assert memory["small"]["refreshed"] == 20
    assert memory["large"]["refreshed"] == 40
    assert memory["large"]["peak_rss_mib"] > 0
    assert memory["verdict"]["peak_growth_share"] is not None


@pytest.mark.postgres
def test_worker_bench_postgres_produces_numbers(
    tmp_path: Path, postgres_base_url: str
) -> None:
    name = f"lv_test_bench_worker_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(postgres_base_url).set(database=name)
    document = run_worker_bench(
        tmp_path / "worker.json",
        "--backend",
        "postgres",
        "--postgres-url",
        url.render_as_string(hide_password=False),
    )

    assert document["backend"] == "postgres"
    check_throughput(document)
    assert document["environment"]["postgresql"]


def test_token_server_load_test_reports_rates() -> None:
    output = run_module(
        "bench.token_server", "--load", "200", "--load-connections", "4"
    )

    result = json.loads(output)
    assert result["requests"] == 200
    assert result["requests_per_second"] > 0
    assert result["server_cpu_ms_per_request"] >= 0
