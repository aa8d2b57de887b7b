"""The performance targets, checked against a run's results.

Ratios compare medians of the library and of the raw driver measured in the
same run. No target is an absolute time, because the machines are noisy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

POINT_AND_USER_READS = (
    "find_by_id",
    "find_by_user_id",
    "find_active_by_user",
    "find_by_user_and_provider",
)
READ_RATIO = 1.5
# The due scan and the claim of a batch of due connections. Each returns a
# bounded batch of rows that it finds through a partial index.
SCANS = ("find_expiring_soon", "claim_due_batch")
SCAN_RATIO = 1.3
# A scan at the largest size may take at most this much longer than at the
# smallest, because it reads `limit` rows in index order and so its cost must
# not grow with the table.
SCAN_GROWTH = 1.2
BULK_PER_SECOND = 50_000


@dataclass(frozen=True, slots=True)
class Check:
    """One target checked on one backend, at one size or across sizes.

    `target` names the target the check counts towards, `size` is None for a
    growth check, and `unit` is "x" for ratios and "/s" for rates.
    """

    target: str
    description: str
    backend: str
    size: int | None
    value: float
    unit: str
    limit: float
    met: bool


def evaluate(
    runs: list[dict[str, Any]], scaling: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return one check per target, backend and size, as dictionaries.

    `scaling` contains each scan's medians at the smallest and the largest
    size, timed in turn, with their ratio as `growth`.
    """
    checks = []
    for run in runs:
        checks += _run_checks(run)
    checks += [_growth_check(growth) for growth in scaling]
    return [asdict(check) for check in checks]


def _run_checks(run: dict[str, Any]) -> list[Check]:
    operations = run["operations"]
    backend, size = run["backend"], run["size"]
    where = f"{backend}, {size:,} rows"
    checks = []
    for name in POINT_AND_USER_READS:
        if name in operations:
            checks.append(
                _at_most(
                    f"point and per-user reads within {READ_RATIO}x of the raw "
                    "driver (median)",
                    f"{name} / raw, {where}",
                    backend,
                    size,
                    operations[name]["ratio"],
                    READ_RATIO,
                )
            )
    for name in SCANS:
        if name in operations:
            checks.append(
                _at_most(
                    f"{name} within {SCAN_RATIO}x of the raw driver (median)",
                    f"{name} / raw, {where}",
                    backend,
                    size,
                    operations[name]["ratio"],
                    SCAN_RATIO,
                )
            )
    if backend == "postgres" and "bulk_import" in operations:
        rate = operations["bulk_import"]["library"]["connections_per_second"]
        checks.append(
            Check(
                target=f"bulk import on PostgreSQL at least {BULK_PER_SECOND:,} "
                "connections per second",
                description=f"bulk_import per second, {where} >= {BULK_PER_SECOND:,}",
                backend=backend,
                size=size,
                value=rate,
                unit="/s",
                limit=BULK_PER_SECOND,
                met=rate >= BULK_PER_SECOND,
            )
        )
    return checks


def _growth_check(growth: dict[str, Any]) -> Check:
    name, backend = growth["operation"], growth["backend"]
    return _at_most(
        f"{name} at {growth['largest_size']:,} rows at most {SCAN_GROWTH}x its "
        f"time at {growth['smallest_size']:,}",
        f"{name} largest / smallest size, {backend}",
        backend,
        None,
        growth["growth"],
        SCAN_GROWTH,
    )


def _at_most(
    target: str,
    description: str,
    backend: str,
    size: int | None,
    value: float,
    limit: float,
) -> Check:
    return Check(
        target=target,
        description=f"{description} <= {limit}",
        backend=backend,
        size=size,
        value=value,
        unit="x",
        limit=limit,
        met=value <= limit,
    )
