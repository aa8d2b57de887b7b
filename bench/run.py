"""Run the repository, bulk-import and encryption benchmarks; write JSON results.

Example: `python -m bench.run --sizes 100000 --backends sqlite,postgres`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import targets
from bench.backends import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_SCHEMA,
    Backend,
    BackendOptions,
    open_backend,
)
from bench.crypto import measure_encryption
from bench.dataset import (
    CONNECTIONS_PER_USER,
    DEFAULT_SEED,
    ConnectionFactory,
    load,
    make_keyring,
    make_providers,
    save_providers,
)
from bench.environment import describe
from bench.explain import explain
from bench.measure import compare, interleave
from bench.operations import (
    Context,
    Counts,
    Operation,
    claim_operation,
    read_operations,
    write_operations,
)
from linkvault.adapters.clock import FakeClock

RESULTS = Path(__file__).parent / "results"
# The data is laid out around this fixed "now", so runs are comparable; the
# library reads it from a fake clock.
DATASET_NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SAMPLE_SIZE = 5_000


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Everything the command line sets."""

    sizes: tuple[int, ...]
    backends: tuple[str, ...]
    out: Path
    operations: tuple[str, ...] | None
    counts: Counts
    backend: BackendOptions
    crypto_samples: int
    crypto_batch: int
    seed: int
    cpu: int | None


async def run(options: Options) -> dict[str, Any]:
    """Measure every size on every backend and return the results document."""
    encryption = measure_encryption(options.crypto_samples, options.crypto_batch)
    _progress(
        "encryption: "
        f"{encryption['encrypt_decrypt']['median_us']:.2f} us, with JSON "
        f"{encryption['encrypt_decrypt_with_json']['median_us']:.2f} us"
    )
    runs = []
    scans: dict[str, dict[int, list[Operation]]] = {}
    postgres_version = None
    # Every database stays open until the end, so that the scans can be timed
    # at the smallest and the largest size in turn.
    async with contextlib.AsyncExitStack() as stack:
        for size in options.sizes:
            for name in options.backends:
                backend = await stack.enter_async_context(
                    open_backend(name, size, _backend_options(options, size))
                )
                postgres_version = backend.server_version or postgres_version
                run, scanned = await _run_backend(backend, size, options)
                runs.append(run)
                scans.setdefault(name, {})[size] = scanned
        scaling = [growth for name in scans for growth in await _scaling(name, scans)]

    return {
        "environment": describe(postgres_version),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "settings": {
            "cpu": options.cpu,
            "counts": dataclasses.asdict(options.counts),
            "seed": options.seed,
            "dataset_now": DATASET_NOW.isoformat(),
        },
        "encryption": encryption,
        "runs": runs,
        "scaling": scaling,
        "targets": targets.evaluate(runs, scaling),
    }


def _backend_options(options: Options, size: int) -> BackendOptions:
    """Give each size its own PostgreSQL schema when several sizes are open."""
    if len(options.sizes) == 1:
        return options.backend
    schema = f"{options.backend.postgres_schema}_{size}"
    return dataclasses.replace(options.backend, postgres_schema=schema)


async def _run_backend(
    backend: Backend, size: int, options: Options
) -> tuple[dict[str, Any], list[Operation]]:
    """Load one database and measure every operation.

    Returns the results and the scans, which `_scaling` times again later.
    """
    database, driver = backend.database, backend.driver
    providers = make_providers(options.seed)
    await save_providers(database, providers)
    factory = ConnectionFactory(
        now=DATASET_NOW,
        keyring=make_keyring(),
        providers=providers,
        user_count=size // CONNECTIONS_PER_USER,
        seed=options.seed,
    )

    started = time.perf_counter()
    sample = await load(database, factory, size=size, sample_size=SAMPLE_SIZE)
    load_seconds = time.perf_counter() - started
    await driver.analyze()
    _progress(f"{backend.name} {size:,}: loaded in {load_seconds:.1f} s")

    context = Context(
        database, driver, factory, FakeClock(DATASET_NOW), sample, options.counts
    )
    # The claim runs before the writes, which change the rows it claims.
    explained = [*read_operations(context), await claim_operation(context)]
    results = {}
    for operation in _selected(explained, options):
        results[operation.name] = await _measure(operation, backend.name, size)
    plans = await explain(database, driver, explained)
    for operation in _selected(await write_operations(context), options):
        results[operation.name] = await _measure(operation, backend.name, size)

    run = {
        "backend": backend.name,
        "size": size,
        "load_seconds": load_seconds,
        "operations": results,
        "plans": plans,
        "raw_statements": dataclasses.asdict(driver.statements),
    }
    scans = [op for op in _selected(explained, options) if op.name in targets.SCANS]
    return run, scans


def _selected(operations: list[Operation], options: Options) -> list[Operation]:
    if options.operations is None:
        return operations
    return [op for op in operations if op.name in options.operations]


async def _measure(operation: Operation, backend: str, size: int) -> dict[str, Any]:
    if operation.check is not None:
        await operation.check()
    gc.collect()
    samples = await interleave(
        operation.library,
        operation.raw,
        iterations=operation.iterations,
        warmup=operation.warmup,
    )
    if operation.cleanup is not None:
        await operation.cleanup()

    result = compare(samples) | operation.details
    if operation.rows is not None:
        result["rows"] = operation.rows
        for side in ("library", "raw"):
            seconds = result[side]["median_ms"] / 1000
            result[side]["connections_per_second"] = operation.rows / seconds
    _progress(
        f"{backend} {size:,}: {operation.name} "
        f"library {result['library']['median_ms']:.3f} ms, "
        f"raw {result['raw']['median_ms']:.3f} ms, ratio {result['ratio']:.2f}"
    )
    return result


async def _scaling(
    backend: str, scans: dict[str, dict[int, list[Operation]]]
) -> list[dict[str, Any]]:
    """Time each scan on the smallest and the largest database in turn.

    Timed minutes apart, the two medians would also differ by whatever else
    the machine did in between. Alternating calls see the same noise.
    """
    sizes = sorted(scans[backend])
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    on_large = {operation.name: operation for operation in scans[backend][large]}
    result = []
    for operation in scans[backend][small]:
        other = on_large.get(operation.name)
        if other is not None:
            result.append(await _growth(backend, operation, other, (small, large)))
    return result


async def _growth(
    backend: str, small: Operation, large: Operation, sizes: tuple[int, int]
) -> dict[str, Any]:
    for operation in (small, large):
        if operation.check is not None:
            await operation.check()
    gc.collect()
    medians = {}
    for side in ("library", "raw"):
        # `interleave` names its two sides library and raw, but here both are
        # the same side of the operation, on the large and the small database.
        samples = await interleave(
            getattr(large, side),
            getattr(small, side),
            iterations=small.iterations,
            warmup=small.warmup,
        )
        medians[side] = (
            statistics.median(samples.raw) / 1e6,
            statistics.median(samples.library) / 1e6,
        )
    for operation in (small, large):
        if operation.cleanup is not None:
            await operation.cleanup()

    library_small, library_large = medians["library"]
    raw_small, raw_large = medians["raw"]
    growth = {
        "backend": backend,
        "operation": small.name,
        "smallest_size": sizes[0],
        "largest_size": sizes[1],
        "smallest_median_ms": library_small,
        "largest_median_ms": library_large,
        "raw_smallest_median_ms": raw_small,
        "raw_largest_median_ms": raw_large,
        "growth": library_large / library_small,
        "raw_growth": raw_large / raw_small,
    }
    _progress(
        f"{backend}: {small.name} at {sizes[1]:,} / {sizes[0]:,} rows, "
        f"library {growth['growth']:.2f}, raw {growth['raw_growth']:.2f}"
    )
    return growth


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    sizes = (args.size,) if args.size else _int_list(parser, args.sizes)
    counts = _counts(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Options(
        sizes=sizes,
        backends=tuple(name.strip() for name in args.backends.split(",")),
        out=args.out or RESULTS / f"bench-{stamp}.json",
        operations=tuple(args.operations.split(",")) if args.operations else None,
        counts=counts,
        backend=BackendOptions(
            postgres_url=args.postgres_url,
            postgres_schema=args.postgres_schema,
            sqlite_dir=args.sqlite_dir,
            keep=args.keep,
        ),
        crypto_samples=args.crypto_samples,
        crypto_batch=args.crypto_batch,
        seed=args.seed,
        cpu=args.cpu,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--size", type=int, help="one dataset size in connections (overrides --sizes)")
    add("--sizes", default="100000", help="comma-separated dataset sizes")
    add("--backends", default="sqlite,postgres", help="sqlite, postgres or both")
    add("--out", type=Path, help="results file (default bench/results/bench-*.json)")
    add("--operations", help="comma-separated operation names to run (default all)")
    add("--iterations", type=int, help="timed calls per side for reads and writes")
    add("--warmup", type=int, help="untimed calls per side before timing")
    add("--bulk-batch", type=int, help="connections per bulk-import call")
    add("--bulk-repeats", type=int, help="timed bulk-import calls per side")
    add("--crypto-samples", type=int, default=200, help="encryption samples")
    add("--crypto-batch", type=int, default=1000, help="calls per encryption sample")
    add("--seed", type=int, default=DEFAULT_SEED, help="seed of the dataset")
    add("--postgres-url", default=DEFAULT_POSTGRES_URL, help="benchmark database URL")
    add("--postgres-schema", default=DEFAULT_SCHEMA, help="schema, dropped after")
    add("--sqlite-dir", type=Path, help="folder for the SQLite file (default: temp)")
    add("--keep", action="store_true", help="keep the databases after the run")
    add("--cpu", type=int, help="pin this process and its threads to one CPU")
    return parser


def _int_list(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        parser.error(f"--sizes {text!r} is invalid; pass integers such as 100000")
    if any(value < 100 for value in values):
        parser.error(f"--sizes {text!r} is too small; use at least 100 rows")
    return values


def _counts(args: argparse.Namespace) -> Counts:
    counts = Counts()
    changes: dict[str, int] = {}
    if args.iterations is not None:
        changes |= {
            "reads": args.iterations,
            "writes": args.iterations,
            "scans": max(1, args.iterations // 10),
        }
    if args.warmup is not None:
        changes["warmup"] = args.warmup
    if args.bulk_batch is not None:
        changes["bulk_batch"] = args.bulk_batch
    if args.bulk_repeats is not None:
        changes["bulk_repeats"] = args.bulk_repeats
    return dataclasses.replace(counts, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    if options.cpu is not None:
        # aiosqlite's thread then wakes on the event loop's CPU; on small
        # virtual machines cross-CPU wake-ups make SQLite timings jump.
        os.sched_setaffinity(0, {options.cpu})
    results = asyncio.run(run(options))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _progress(f"results written to {options.out}")
    for target in results["targets"]:
        state = "met" if target["met"] else "MISSED"
        _progress(f"{state}: {target['description']} ({target['value']:.2f})")


if __name__ == "__main__":
    main()
