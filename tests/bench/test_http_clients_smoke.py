"""The HTTP client benchmark runs end to end at a tiny size; timings are not checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_http_clients_bench_reports_both(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    command = [
        sys.executable,
        "-m",
        "bench.http_clients",
        "--rounds",
        "2",
        "--requests",
        "40",
        "--out",
        str(out),
    ]

    finished = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    assert finished.returncode == 0, finished.stderr
    document = json.loads(out.read_text())
    assert set(document["medians"]) == {"aiohttp", "httpx"}
    assert [len(runs) for runs in document["samples"].values()] == [2, 2]
    assert document["httpx_over_aiohttp_cpu"] > 0
