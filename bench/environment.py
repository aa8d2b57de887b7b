"""The machine and software versions a benchmark ran on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("sqlalchemy", "asyncpg", "aiosqlite", "cryptography", "greenlet")


def describe(postgres_version: str | None) -> dict[str, Any]:
    """Return cores, memory, CPU model, versions, the date and the commit."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "commit": _commit(),
    }


def _cpu_model() -> str | None:
    return _proc_field("/proc/cpuinfo", "model name")


def _memory_gib() -> float | None:
    value = _proc_field("/proc/meminfo", "MemTotal")
    if value is None:
        return None
    kibibytes = int(value.split()[0])
    return round(kibibytes / 1024**2, 1)


def _proc_field(path: str, name: str) -> str | None:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None
