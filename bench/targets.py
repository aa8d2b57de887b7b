"""The performance targets, checked against a run's results.

Ratios compare medians of the library and of the raw driver measured in the
same run. No target is an absolute time, because the machines are noisy.
"""

from __future__ import annotations

from typing import Any

POINT_AND_USER_READS = (
    "find_by_id",
    "find_by_user_id",
    "find_active_by_user",
    "find_by_user_and_provider",
)
READ_RATIO = 1.5
SCAN_RATIO = 1.3
# The due scan at the largest size may take at most this much longer than at
# the smallest: it returns `limit` rows through a partial index, so its cost
# must not grow with the table.
SCAN_GROWTH = 1.2
BULK_PER_SECOND = 50_000


def evaluate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one entry per target and run: description, value, limit, met."""
    checks = []
    for run in runs:
        operations = run["operations"]
        where = f"{run['backend']}, {run['size']:,} rows"
        for name in POINT_AND_USER_READS:
            if name in operations:
                ratio = operations[name]["ratio"]
                checks.append(_at_most(f"{name} / raw, {where}", ratio, READ_RATIO))
        if "find_expiring_soon" in operations:
            ratio = operations["find_expiring_soon"]["ratio"]
            checks.append(
                _at_most(f"find_expiring_soon / raw, {where}", ratio, SCAN_RATIO)
            )
        if run["backend"] == "postgres" and "bulk_import" in operations:
            rate = operations["bulk_import"]["library"]["connections_per_second"]
            checks.append(_at_least(f"bulk_import per second, {where}", rate))

    for backend, growth in scaling(runs).items():
        checks.append(
            _at_most(
                f"find_expiring_soon largest / smallest size, {backend}",
                growth["growth"],
                SCAN_GROWTH,
            )
        )
    return checks


def scaling(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Compare the due scan's library median at the largest and smallest size."""
    result = {}
    for backend in sorted({run["backend"] for run in runs}):
        timed = sorted(
            (run["size"], run["operations"]["find_expiring_soon"])
            for run in runs
            if run["backend"] == backend and "find_expiring_soon" in run["operations"]
        )
        if len(timed) < 2:
            continue
        (small, first), (large, last) = timed[0], timed[-1]
        result[backend] = {
            "smallest_size": small,
            "largest_size": large,
            "smallest_median_ms": first["library"]["median_ms"],
            "largest_median_ms": last["library"]["median_ms"],
            "growth": last["library"]["median_ms"] / first["library"]["median_ms"],
            "raw_growth": last["raw"]["median_ms"] / first["raw"]["median_ms"],
        }
    return result


def _at_most(description: str, value: float, limit: float) -> dict[str, Any]:
    return {
        "description": f"{description} <= {limit}",
        "value": value,
        "limit": limit,
        "met": value <= limit,
    }


def _at_least(description: str, value: float) -> dict[str, Any]:
    return {
        "description": f"{description} >= {BULK_PER_SECOND:,}",
        "value": value,
        "limit": BULK_PER_SECOND,
        "met": value >= BULK_PER_SECOND,
    }
