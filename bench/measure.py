"""Interleaved timing of the library against the raw driver, and the statistics.

Each iteration runs both sides back to back on the same input, alternating
which goes first, so drift (autovacuum, page cache, CPU frequency, other load)
hits both sides alike. Only `run` is timed; `prepare` builds its input.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Prepare = Callable[[int], Awaitable[Any]]
Run = Callable[[Any], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Side:
    """One way of doing an operation: an untimed `prepare`, a timed `run`."""

    prepare: Prepare
    run: Run


@dataclass(slots=True)
class Samples:
    """Elapsed nanoseconds of each timed call, per side."""

    library: list[int] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)


async def interleave(
    library: Side, raw: Side, *, iterations: int, warmup: int
) -> Samples:
    """Time `iterations` calls of each side, after `warmup` untimed rounds."""
    samples = Samples()
    for index in range(warmup + iterations):
        library_first = index % 2 == 0
        first, second = (library, raw) if library_first else (raw, library)
        first_ns = await _timed(first, index)
        second_ns = await _timed(second, index)
        if index < warmup:
            continue

        library_ns, raw_ns = (
            (first_ns, second_ns) if library_first else (second_ns, first_ns)
        )
        samples.library.append(library_ns)
        samples.raw.append(raw_ns)
    return samples


async def _timed(side: Side, index: int) -> int:
    argument = await side.prepare(index)
    start = time.perf_counter_ns()
    await side.run(argument)
    return time.perf_counter_ns() - start


def percentile(values: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile (`share` in 0-1) of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def summarise_ns(values: Sequence[int]) -> dict[str, float | int]:
    """Return median, p95 and minimum in milliseconds, and the sample count."""
    return {
        "median_ms": statistics.median(values) / 1e6,
        "p95_ms": percentile(values, 0.95) / 1e6,
        "min_ms": min(values) / 1e6,
        "samples": len(values),
    }


def compare(samples: Samples) -> dict[str, Any]:
    """Summarise both sides and the ratio of their medians (library / raw)."""
    library = summarise_ns(samples.library)
    raw = summarise_ns(samples.raw)
    return {
        "library": library,
        "raw": raw,
        "ratio": library["median_ms"] / raw["median_ms"],
    }
