"""Render benchmark results as the Markdown tables of BENCHMARKS.md.

Example: `python -m bench.report bench/results/bench-100k.json`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Display names of the backends, in the column order of the targets table.
_BACKENDS = {"postgres": "PostgreSQL", "sqlite": "SQLite"}


def render(document: dict[str, Any]) -> str:
    """Return the environment, timings, scaling, encryption and target tables."""
    parts = [_environment(document["environment"])]
    parts += [_run(run) for run in sorted(document["runs"], key=_backend_then_size)]
    if document["scaling"]:
        parts.append(_scaling(document["scaling"]))
    parts.append(_encryption(document["encryption"]))
    parts.append(_targets(document["targets"]))
    return "\n\n".join(parts) + "\n"


def render_plans(document: dict[str, Any]) -> str:
    """Return every recorded query plan as a Markdown code block."""
    blocks = []
    for run in document["runs"]:
        for name, plan in run["plans"].items():
            heading = f"{run['backend']}, {run['size']:,} rows, {name}"
            body = "\n".join(plan["plan"])
            blocks.append(f"{heading}:\n\n```text\n{body}\n```")
    return "\n\n".join(blocks) + "\n"


def _environment(environment: dict[str, Any]) -> str:
    packages = environment["packages"]
    rows = [
        ("Date (UTC)", environment["date"]),
        ("CPU", f"{environment['cpu_model']}, {environment['cores']} cores"),
        ("Memory", f"{environment['memory_gib']} GiB"),
        ("Python", environment["python"]),
        ("SQLAlchemy", packages["sqlalchemy"]),
        ("asyncpg", packages["asyncpg"]),
        ("aiosqlite", packages["aiosqlite"]),
        ("cryptography", packages["cryptography"]),
        ("PostgreSQL", environment["postgresql"]),
        ("SQLite", environment["sqlite"]),
        ("Commit", environment["commit"]),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _backend_then_size(run: dict[str, Any]) -> tuple[int, int]:
    return list(_BACKENDS).index(run["backend"]), run["size"]


def _run(run: dict[str, Any]) -> str:
    lines = [
        f"{_BACKENDS[run['backend']]}, {run['size']:,} rows "
        f"(loaded in {run['load_seconds']:.1f} s):",
        "",
        "| operation | library median | library p95 | raw median | raw p95 | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in run["operations"].items():
        library, raw = result["library"], result["raw"]
        label = name
        if "rows" in result:
            rate = library["connections_per_second"]
            raw_rate = raw["connections_per_second"]
            label = (
                f"{name}, {result['rows']:,} rows: {rate:,.0f}/s "
                f"(raw {raw_rate:,.0f}/s)"
            )
        lines.append(
            f"| {label} | {_ms(library['median_ms'])} | {_ms(library['p95_ms'])} "
            f"| {_ms(raw['median_ms'])} | {_ms(raw['p95_ms'])} "
            f"| {result['ratio']:.2f} |"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def _scaling(scaling: Sequence[dict[str, Any]]) -> str:
    first = scaling[0]
    lines = [
        f"| database | operation | {first['smallest_size']:,} rows "
        f"| {first['largest_size']:,} rows | growth | raw growth |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for growth in sorted(scaling, key=_backend_then_operation):
        lines.append(
            f"| {_BACKENDS[growth['backend']]} | {growth['operation']} "
            f"| {_ms(growth['smallest_median_ms'])} "
            f"| {_ms(growth['largest_median_ms'])} "
            f"| {growth['growth']:.2f} | {growth['raw_growth']:.2f} |"
        )
    return "\n".join(lines)


def _backend_then_operation(growth: dict[str, Any]) -> tuple[int, str]:
    return list(_BACKENDS).index(growth["backend"]), growth["operation"]


def _encryption(encryption: dict[str, Any]) -> str:
    lines = [
        f"Token set of {encryption['plaintext_bytes']} bytes of JSON, "
        f"blob of {encryption['blob_bytes']} bytes:",
        "",
        "| per operation | median | p95 |",
        "|---|---:|---:|",
    ]
    for name in ("encrypt_decrypt", "encrypt_decrypt_with_json"):
        result = encryption[name]
        lines.append(
            f"| {name} | {result['median_us']:.2f} us | {result['p95_us']:.2f} us |"
        )
    return "\n".join(lines)


def _targets(checks: Sequence[dict[str, Any]]) -> str:
    """Return one row per target, with the values per database and the result."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_target.setdefault(check["target"], []).append(check)

    names = list(_BACKENDS.values())
    lines = [
        f"| target | {' | '.join(names)} | result |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for target, group in by_target.items():
        values = [
            _values([check for check in group if check["backend"] == backend])
            for backend in _BACKENDS
        ]
        lines.append(f"| {target} | {' | '.join(values)} | {_result(group)} |")
    return "\n".join(lines)


def _values(checks: Sequence[dict[str, Any]]) -> str:
    if not checks:
        return "-"
    if checks[0]["unit"] == "/s":
        return ", ".join(
            f"{check['value']:,.0f}/s at {check['size']:,} rows" for check in checks
        )
    low = min(check["value"] for check in checks)
    high = max(check["value"] for check in checks)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"


def _result(checks: Sequence[dict[str, Any]]) -> str:
    missed = [check for check in checks if not check["met"]]
    if not missed:
        return "met"
    if len(missed) == len(checks):
        return "missed"
    places = []
    for check in missed:
        place = _BACKENDS[check["backend"]]
        if check["size"] is not None:
            place += f" at {check['size']:,} rows"
        if place not in places:
            places.append(place)
    return f"missed for {', '.join(places)}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results", type=Path, nargs="+", help="results JSON files")
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    args = parser.parse_args(argv)
    for path in args.results:
        document = json.loads(path.read_text())
        print(render_plans(document) if args.plans else render(document))


if __name__ == "__main__":
    main()
