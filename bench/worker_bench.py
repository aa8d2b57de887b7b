"""Benchmark of `linkvault worker` processes against a minimal token endpoint.

Run `python -m bench.worker_bench --due 20000 --workers 1,2 --backend postgres`.

Each throughput run loads `--due` active connections that are all due now,
with real encrypted token sets, over ten providers. Their token URL is
`bench.token_server`, an asyncio endpoint that used about 0.03 ms of CPU per
request in `python -m bench.token_server --load 20000` on a two-core VM, so
the run measures the worker, not the server. The providers start
paused, so no worker claims anything while the others start. Once every
worker has printed its ready line, the providers are resumed at once and the
clock starts. The run ends when every connection has `last_refresh_at` at or
after that start, read by polling the database; then the workers get SIGTERM.

Reported per run:

- refreshes per second per process: connections / wall seconds / workers;
- worker CPU ms per refresh: the user plus system time that the workers used
  between the start and the end (from /proc/PID/stat), over the connections;
- peak RSS per worker: VmHWM from /proc/PID/status at the end;
- the CPU of the token server, of the PostgreSQL backends that serve the
  benchmark database and of the whole machine over the same interval, to show
  where the cores went and whether other load shared them.

Every worker count runs `--repeats` times, interleaved, and the medians are
compared with the targets: at least 1,000 refreshes per second per process, and
under 1 ms of worker CPU per refresh.

`--memory-due 1000000` adds the memory runs: one worker gets `--memory-seconds`
with first `--memory-compare-due` (100,000) and then `--memory-due` due
connections, and the peak RSS of both is compared. Memory counts as flat in the
number of due rows when the larger backlog raises the peak by at most 10%.

PostgreSQL: the workers read their database URL from a config file, so they
cannot be pointed at a schema. The benchmark therefore uses a database of its
own, whose name must contain `bench`. It is created when missing, its `public`
schema is dropped and migrated again per invocation, and it is dropped at the
end unless `--keep-database` is given. Results go to
`bench/results/worker-<backend>-<due>.json`.
"""

# Seeded pseudo-random numbers only spread the due times, so they need no
# cryptographic strength.
# ruff: noqa: S311

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from bench.dataset import ConnectionFactory, make_providers, save_providers
from bench.environment import describe
from bench.token_server import ServerProcess, process_cpu_seconds
from linkvault.adapters.crypto import EncryptionKey, Keyring, write_key_file
from linkvault.adapters.sqlalchemy.bulk import bulk_import
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import upgrade
from linkvault.adapters.sqlalchemy.tables import (
    connection_events,
    provider_connections,
    providers,
)
from linkvault.domain import ConnectionStatus, Provider, ProviderConnection
from linkvault.entrypoints.cli.worker import READY_PREFIX

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_POSTGRES_URL = (
    "postgresql+asyncpg://postgres@127.0.0.1:5432/linkvault_bench_worker"
)
SECRET_ENV = "LINKVAULT_BENCH_CLIENT_SECRET"
CLIENT_SECRET = "bench-client-secret"
KEY_ID = "bench-worker"
PAUSED_REASON = "worker benchmark: waiting for every worker to be ready"

# Rows per `bulk_import` call while loading.
LOAD_CHUNK = 20_000
# Due times are spread over this much of the past, so the claim order matters.
DUE_SPREAD = timedelta(minutes=10)

# Seconds to wait for a worker's ready line. A cold interpreter imports
# SQLAlchemy, Typer and httpx while the other workers do the same.
READY_TIMEOUT = 60.0
# Seconds a ready worker gets to reach its idle poll before the clock starts.
SETTLE_SECONDS = 0.5
# Seconds between the polls that count refreshed connections.
COUNT_POLL_SECONDS = 0.2
# Seconds a worker gets to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT = 30.0
# Seconds between RSS samples in the memory runs.
RSS_SAMPLE_SECONDS = 1.0
# Characters of each worker's log that a failed run shows.
LOG_TAIL_CHARS = 3000

# Targets of the refresh worker. The benchmark reports them and never fails.
TARGET_REFRESHES_PER_PROCESS = 1_000.0
TARGET_CPU_MS_PER_REFRESH = 1.0
TARGET_PEAK_RSS_MIB = 200.0
# A larger backlog may raise the peak by at most this share and stay "flat".
FLAT_TOLERANCE = 0.10


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The `linkvault worker` options every benchmarked worker gets."""

    # Tuned against the local token endpoint, which responds within a
    # millisecond: with aiohttp, 32 refreshes in flight keep one worker busy
    # (16 reached about 75% of the rate). With httpx, each extra one costs CPU
    # in httpcore's connection pool, so 4 suited it best.
    batch_size: int = 200
    concurrency: int = 32
    per_provider_concurrency: int = 32
    poll_seconds: float = 0.05
    save_window_ms: float = 0.0
    log_level: str = "INFO"
    # Written to the workers' config file, not passed as an option.
    http_client: str = "aiohttp"

    def arguments(self) -> list[str]:
        return [
            "--save-window-ms",
            str(self.save_window_ms),
            "--batch-size",
            str(self.batch_size),
            "--concurrency",
            str(self.concurrency),
            "--per-provider-concurrency",
            str(self.per_provider_concurrency),
            "--poll-seconds",
            str(self.poll_seconds),
        ]


DEFAULT_WORKER = WorkerOptions()


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Everything one invocation runs, from the command line."""

    backend: str
    due: int
    workers: tuple[int, ...]
    repeats: int
    worker: WorkerOptions
    postgres_url: str
    keep_database: bool
    run_timeout: float
    memory_due: int
    memory_compare_due: int
    memory_seconds: float
    cprofile_dir: Path | None
    out: Path


# -- /proc readings ------------------------------------------------------------


def vm_kib(pid: int, name: str) -> int:
    """Return a `Vm*` field of /proc/PID/status (VmRSS, VmHWM) in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise ValueError(f"/proc/{pid}/status has no {name} field.")


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores spent busy since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    # proc(5) orders them user nice system idle iowait irq softirq steal guest
    # guest_nice. Guest time is already counted in user, so it is left out.
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(database: str) -> float:
    """Return the CPU seconds of the PostgreSQL backends connected to `database`.

    Backends show their database in their process title, so other clients of
    the same server are left out, and so is the shared background work (WAL
    writer, checkpointer). Backends that exited meanwhile are not counted; the
    workers keep their pooled connections for the whole run.
    """
    total = 0.0
    marker = f" {database} ".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            title = Path(entry.path, "cmdline").read_bytes()
            if title.startswith(b"postgres: ") and marker in title:
                total += process_cpu_seconds(int(entry.name))
    return total


# -- worker processes ----------------------------------------------------------


class WorkerProcess:
    """A `linkvault worker` subprocess in its own process group.

    Its stdout and stderr go to files in `folder`, so no reader thread is
    needed and the log can be shown when the worker fails.
    """

    def __init__(
        self,
        config: Path,
        folder: Path,
        name: str,
        options: WorkerOptions,
        *,
        cprofile_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.stdout_path = folder / f"{name}.out"
        self.stderr_path = folder / f"{name}.err"
        self.stats_path = folder / f"{name}.stats.json"
        command = [
            "-m",
            "linkvault",
            "--config",
            str(config),
            "--log-level",
            options.log_level,
            "worker",
            *options.arguments(),
            "--stats-file",
            str(self.stats_path),
        ]
        if cprofile_dir is not None:
            # cProfile writes its file when the worker exits after SIGTERM.
            profile = cprofile_dir / f"{name}.prof"
            command = ["-m", "cProfile", "-o", str(profile), *command]
        self._stdout = self.stdout_path.open("w")
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 -- our own interpreter
            [sys.executable, *command],
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
            env=worker_environment(),
            cwd=folder,
        )
        self.pid = self.process.pid

    async def wait_ready(self) -> None:
        """Wait until the worker prints its ready line.

        Raises:
            RuntimeError: The worker exited or stayed silent for
                `READY_TIMEOUT` seconds.
        """
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if READY_PREFIX in self.stdout_path.read_text():
                return
            self.check_alive()
            await asyncio.sleep(0.05)
        raise RuntimeError(
            f"Worker {self.name} did not print {READY_PREFIX!r} within "
            f"{READY_TIMEOUT} s. Its output:\n{self.output()}"
        )

    def check_alive(self) -> None:
        """Raise `RuntimeError` with the worker's output if it has exited."""
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"Worker {self.name} exited with code {code}. Its output:\n"
                f"{self.output()}"
            )

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> int | None:
        """Send SIGTERM to the group, then SIGKILL after `STOP_TIMEOUT` s."""
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        for stream in (self._stdout, self._stderr):
            stream.close()
        return self.process.returncode

    def stats(self) -> dict[str, Any]:
        """Return the worker's `--stats-file` document, or {} before the first."""
        try:
            document: dict[str, Any] = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}
        return document

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()


def worker_environment() -> dict[str, str]:
    # LINKVAULT_* variables of this shell would override the config file.
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LINKVAULT_")
    }
    environ[SECRET_ENV] = CLIENT_SECRET
    return environ


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


@contextlib.contextmanager
def started_workers(
    site: Site, count: int, label: str, options: WorkerOptions
) -> Iterator[list[WorkerProcess]]:
    """Start `count` workers and stop every one of them on exit."""
    workers: list[WorkerProcess] = []
    try:
        for index in range(count):
            name = f"{label}-w{index + 1}"
            workers.append(
                WorkerProcess(
                    site.config,
                    site.folder,
                    name,
                    options,
                    cprofile_dir=site.cprofile_dir,
                )
            )
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# -- the database and its data ---------------------------------------------------


@dataclass(slots=True)
class Site:
    """The config, key file, database and token server that a run shares."""

    folder: Path
    config: Path
    database: Database
    keyring: Keyring
    providers: tuple[Provider, ...]
    server: ServerProcess
    cprofile_dir: Path | None = None
    seed: int = 20260301

    @property
    def is_postgres(self) -> bool:
        return self.database.dialect_name == "postgresql"


_BENCH_DATABASE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def checked_database_name(url: URL) -> str:
    """Return the PostgreSQL database name if the benchmark may drop it.

    The benchmark drops the schema of its database, so it accepts only plain
    names that contain `bench`.
    """
    name = url.database or ""
    if not _BENCH_DATABASE.fullmatch(name) or "bench" not in name:
        raise ValueError(
            f"Database {name!r} is not a benchmark database; the worker "
            "benchmark drops its schema, so pass a URL whose database name "
            "contains 'bench' (for example linkvault_bench_worker)."
        )
    return name


async def _run_autocommit(url: URL, *statements: str) -> None:
    # CREATE DATABASE, DROP DATABASE and VACUUM cannot run in a transaction.
    database = Database.from_url(url, isolation_level="AUTOCOMMIT")
    try:
        async with database.engine.connect() as connection:
            for statement in statements:
                await connection.execute(sa.text(statement))
    finally:
        await database.dispose()


async def prepare_postgres(url: URL) -> None:
    """Create the benchmark database if missing and give it an empty schema."""
    name = checked_database_name(url)
    admin = url.set(database="postgres")
    database = Database.from_url(admin)
    try:
        async with database.session(readonly=True) as session:
            query = sa.text("SELECT 1 FROM pg_database WHERE datname = :name")
            exists = (await session.execute(query, {"name": name})).scalar()
    finally:
        await database.dispose()
    if not exists:
        await _run_autocommit(admin, f'CREATE DATABASE "{name}"')
    await _run_autocommit(
        url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"
    )


async def drop_postgres(url: URL) -> None:
    name = checked_database_name(url)
    await _run_autocommit(
        url.set(database="postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


def write_config(
    folder: Path, database_url: str, key: EncryptionKey, http_client: str
) -> Path:
    """Write the key file and linkvault.toml that the workers read."""
    write_key_file(folder / "linkvault.keys", [key], key.key_id)
    config = folder / "linkvault.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        'key_file = "linkvault.keys"\n'
        'log_level = "INFO"\n'
        f'http_client = "{http_client}"\n'
    )
    return config


def bench_providers(token_url: str, now: datetime) -> tuple[Provider, ...]:
    """Return the dataset's ten providers, paused, pointed at the token server."""
    return tuple(
        dataclasses.replace(
            provider,
            token_url=token_url,
            client_secret_env=SECRET_ENV,
            paused_at=now,
            paused_reason=PAUSED_REASON,
        )
        for provider in make_providers()
    )


async def empty_tables(site: Site) -> None:
    """Remove every connection and event and pause every provider."""
    async with site.database.session() as session:
        if site.is_postgres:
            await session.execute(
                sa.text("TRUNCATE provider_connections, connection_events")
            )
        else:
            await session.execute(sa.delete(provider_connections))
            await session.execute(sa.delete(connection_events))
        await session.execute(
            sa.update(providers).values(
                paused_at=datetime.now(UTC), paused_reason=PAUSED_REASON
            )
        )


def due_connection(
    factory: ConnectionFactory, now: datetime, rng: random.Random
) -> ProviderConnection:
    """Return an active connection that is due now and not refreshed since `now`."""
    connection = factory.connection(ConnectionStatus.ACTIVE)
    connection.next_refresh_at = now - DUE_SPREAD * rng.random()
    # The dataset may put the last refresh in the future; the run counts
    # refreshes by `last_refresh_at`, so every row starts before `now`.
    last_refresh = max(connection.created_at, now - timedelta(hours=1))
    connection.last_refresh_at = last_refresh
    connection.last_sync_at = last_refresh
    connection.updated_at = last_refresh
    return connection


async def load_due(site: Site, count: int) -> float:
    """Replace every connection with `count` due ones; return the seconds taken."""
    started = time.perf_counter()
    await empty_tables(site)
    now = datetime.now(UTC)
    factory = ConnectionFactory(
        now=now,
        keyring=site.keyring,
        providers=site.providers,
        user_count=max(1, count // 5),
        seed=site.seed,
    )
    rng = random.Random(site.seed)
    for start in range(0, count, LOAD_CHUNK):
        size = min(LOAD_CHUNK, count - start)
        chunk = [due_connection(factory, now, rng) for _ in range(size)]
        await bulk_import(site.database, chunk)
    if site.is_postgres:
        await _run_autocommit(
            site.database.engine.url, "VACUUM ANALYZE provider_connections"
        )
    return time.perf_counter() - started


async def resume_providers(site: Site) -> datetime:
    """Resume every provider; return the moment before, which starts the run."""
    started_at = datetime.now(UTC)
    async with site.database.session() as session:
        await session.execute(
            sa.update(providers).values(paused_at=None, paused_reason=None)
        )
    return started_at


async def count_refreshed(site: Site, since: datetime) -> int:
    statement = (
        sa.select(sa.func.count())
        .select_from(provider_connections)
        .where(provider_connections.c.last_refresh_at >= since)
    )
    async with site.database.session(readonly=True) as session:
        return int((await session.execute(statement)).scalar_one())


async def count_events(site: Site) -> dict[str, int]:
    statement = sa.select(connection_events.c.event_type, sa.func.count()).group_by(
        connection_events.c.event_type
    )
    async with site.database.session(readonly=True) as session:
        rows = (await session.execute(statement)).all()
    return {str(kind): int(count) for kind, count in rows}


async def server_version(site: Site) -> str | None:
    if not site.is_postgres:
        return None
    async with site.database.session(readonly=True) as session:
        return str((await session.execute(sa.text("SHOW server_version"))).scalar())


# -- throughput runs -------------------------------------------------------------


@dataclass(slots=True)
class CpuSnapshot:
    """CPU seconds of every process a run involves, taken at one moment."""

    workers: list[float]
    server: float
    database: float
    machine: float
    wall: float = field(default_factory=time.perf_counter)

    @classmethod
    def take(cls, site: Site, workers: Sequence[WorkerProcess]) -> CpuSnapshot:
        return cls(
            workers=[worker.cpu_seconds() for worker in workers],
            server=site.server.cpu_seconds(),
            database=_database_cpu_seconds(site),
            machine=machine_busy_seconds(),
        )


def _database_cpu_seconds(site: Site) -> float:
    if not site.is_postgres:
        return 0.0
    return postgres_cpu_seconds(site.database.engine.url.database or "")


async def wait_until_refreshed(
    site: Site,
    workers: Sequence[WorkerProcess],
    since: datetime,
    target: int,
    limit_seconds: float,
) -> int:
    """Poll until `target` connections were refreshed since `since`.

    NOTE: the end is seen up to one poll (`COUNT_POLL_SECONDS`) late, which
    lengthens the measured wall time by at most that much.

    Raises:
        RuntimeError: A worker exited, or `limit_seconds` passed. The
            message contains how many were refreshed.
    """
    deadline = time.monotonic() + limit_seconds
    refreshed = 0
    while refreshed < target:
        if time.monotonic() > deadline:
            logs = "\n".join(worker.output()[-LOG_TAIL_CHARS:] for worker in workers)
            raise RuntimeError(
                f"Only {refreshed} of {target} connections were refreshed within "
                f"{limit_seconds} s; raise --run-timeout, or read the end of the "
                f"worker logs:\n{logs}"
            )
        for worker in workers:
            worker.check_alive()
        await asyncio.sleep(COUNT_POLL_SECONDS)
        refreshed = await count_refreshed(site, since)
    return refreshed


async def throughput_run(
    site: Site, count: int, label: str, options: BenchOptions
) -> dict[str, Any]:
    """Load `options.due` connections and time `count` workers refreshing them."""
    load_seconds = await load_due(site, options.due)
    with started_workers(site, count, label, options.worker) as workers:
        for worker in workers:
            await worker.wait_ready()
        await asyncio.sleep(SETTLE_SECONDS)

        before = CpuSnapshot.take(site, workers)
        started_at = await resume_providers(site)
        refreshed = await wait_until_refreshed(
            site, workers, started_at, options.due, options.run_timeout
        )
        after = CpuSnapshot.take(site, workers)
        peaks = [vm_kib(worker.pid, "VmHWM") for worker in workers]
    # The workers have stopped, so their stats files are final.
    stats = [worker.stats() for worker in workers]

    events = await count_events(site)
    return run_record(count, refreshed, before, after, peaks, stats, events) | {
        "load_seconds": round(load_seconds, 2)
    }


def run_record(
    count: int,
    refreshed: int,
    before: CpuSnapshot,
    after: CpuSnapshot,
    peaks_kib: list[int],
    stats: list[dict[str, Any]],
    events: dict[str, int],
) -> dict[str, Any]:
    """Turn the snapshots around one run into its JSON record."""
    wall = after.wall - before.wall
    worker_cpu = [a - b for a, b in zip(after.workers, before.workers, strict=True)]
    total_cpu = sum(worker_cpu)
    return {
        "workers": count,
        "refreshed": refreshed,
        "wall_seconds": round(wall, 3),
        "refreshes_per_second": round(refreshed / wall, 1),
        "refreshes_per_second_per_process": round(refreshed / wall / count, 1),
        "worker_cpu_seconds": [round(value, 2) for value in worker_cpu],
        "worker_cpu_ms_per_refresh": round(total_cpu / refreshed * 1000, 3),
        "worker_cpu_share": [round(value / wall, 2) for value in worker_cpu],
        "peak_rss_mib": [round(kib / 1024, 1) for kib in peaks_kib],
        "server_cpu_ms_per_refresh": round(
            (after.server - before.server) / refreshed * 1000, 3
        ),
        "database_cpu_ms_per_refresh": round(
            (after.database - before.database) / refreshed * 1000, 3
        ),
        "machine_busy_cores": round((after.machine - before.machine) / wall, 2),
        "outcomes": [document.get("outcomes", {}) for document in stats],
        "latency_seconds": [document.get("latency_seconds", {}) for document in stats],
        "events": events,
    }


def summarise(runs: list[dict[str, Any]], counts: Sequence[int]) -> dict[str, Any]:
    """Return the medians per worker count."""
    summary: dict[str, Any] = {}
    for count in counts:
        mine = [run for run in runs if run["workers"] == count]
        summary[str(count)] = {
            "runs": len(mine),
            "refreshes_per_second_per_process": _median(
                mine, "refreshes_per_second_per_process"
            ),
            "refreshes_per_second": _median(mine, "refreshes_per_second"),
            "worker_cpu_ms_per_refresh": _median(mine, "worker_cpu_ms_per_refresh"),
            "server_cpu_ms_per_refresh": _median(mine, "server_cpu_ms_per_refresh"),
            "database_cpu_ms_per_refresh": _median(mine, "database_cpu_ms_per_refresh"),
            "machine_busy_cores": _median(mine, "machine_busy_cores"),
            "peak_rss_mib_max": max(max(run["peak_rss_mib"]) for run in mine),
        }
    return summary


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(float(statistics.median(run[key] for run in runs)), 3)


# -- memory runs -----------------------------------------------------------------


async def memory_run(site: Site, due: int, options: BenchOptions) -> dict[str, Any]:
    """Give one worker `options.memory_seconds` with `due` due connections."""
    load_seconds = await load_due(site, due)
    label = f"memory-{due}"
    with started_workers(site, 1, label, options.worker) as workers:
        worker = workers[0]
        await worker.wait_ready()
        await asyncio.sleep(SETTLE_SECONDS)
        ready_rss = vm_kib(worker.pid, "VmRSS")

        cpu_before = worker.cpu_seconds()
        started_at = await resume_providers(site)
        samples = await sample_rss(worker, due, options.memory_seconds)
        cpu = worker.cpu_seconds() - cpu_before
        peak = vm_kib(worker.pid, "VmHWM")
    refreshed = await count_refreshed(site, started_at)

    return {
        "due": due,
        "budget_seconds": options.memory_seconds,
        "refreshed": refreshed,
        "refreshed_share": round(refreshed / due, 4),
        "rss_at_ready_mib": round(ready_rss / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "rss_samples_mib": [round(kib / 1024, 1) for kib in samples],
        "worker_cpu_ms_per_refresh": round(cpu / max(refreshed, 1) * 1000, 3),
        "load_seconds": round(load_seconds, 1),
    }


async def sample_rss(worker: WorkerProcess, due: int, seconds: float) -> list[int]:
    """Sample VmRSS every second until `seconds` pass or all `due` are done.

    Progress comes from the worker's stats file, so the 1M-row table is not
    scanned while the worker runs.
    """
    samples: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.check_alive()
        samples.append(vm_kib(worker.pid, "VmRSS"))
        done = worker.stats().get("outcomes", {}).get("refreshed", 0)
        if done >= due:
            break
        await asyncio.sleep(RSS_SAMPLE_SECONDS)
    return samples


def memory_verdict(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1
    return {
        "peak_growth_share": round(growth, 3),
        "flat": growth <= FLAT_TOLERANCE,
        "tolerance_share": FLAT_TOLERANCE,
    }


# -- targets and output ----------------------------------------------------------


def check_targets(
    summary: dict[str, Any], memory: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Compare the medians with the targets; nothing here fails the run."""
    checks = []
    for count, medians in summary.items():
        rate = medians["refreshes_per_second_per_process"]
        cpu = medians["worker_cpu_ms_per_refresh"]
        checks.append(
            _target(
                f"refreshes/s per process, {count} worker(s)",
                rate,
                TARGET_REFRESHES_PER_PROCESS,
                met=rate >= TARGET_REFRESHES_PER_PROCESS,
            )
        )
        checks.append(
            _target(
                f"worker CPU ms per refresh, {count} worker(s)",
                cpu,
                TARGET_CPU_MS_PER_REFRESH,
                met=cpu < TARGET_CPU_MS_PER_REFRESH,
            )
        )
    if memory is not None:
        large = memory["large"]["peak_rss_mib"]
        checks.append(
            _target(
                f"peak RSS MiB at {memory['large']['due']} due",
                large,
                TARGET_PEAK_RSS_MIB,
                met=large < TARGET_PEAK_RSS_MIB,
            )
        )
        checks.append(
            _target(
                "peak RSS growth share, small to large backlog",
                memory["verdict"]["peak_growth_share"],
                FLAT_TOLERANCE,
                met=bool(memory["verdict"]["flat"]),
            )
        )
    return checks


def _target(name: str, value: float, target: float, *, met: bool) -> dict[str, Any]:
    return {"target": name, "value": value, "limit": target, "met": met}


def print_report(document: dict[str, Any], out: TextIO = sys.stdout) -> None:
    worker = document["worker_options"]
    print(
        f"Backend {document['backend']}, {document['due']} due connections, "
        f"worker options {worker}",
        file=out,
    )
    for run in document["runs"]:
        print(
            f"  {run['workers']} worker(s): "
            f"{run['refreshes_per_second_per_process']:>7.1f}/s per process, "
            f"{run['worker_cpu_ms_per_refresh']:.3f} ms CPU/refresh, "
            f"peak RSS {run['peak_rss_mib']} MiB, "
            f"busy cores {run['machine_busy_cores']}",
            file=out,
        )
    print("Medians:", json.dumps(document["summary"], indent=2), file=out)
    if document.get("memory"):
        print("Memory:", json.dumps(document["memory"], indent=2), file=out)
    for check in document["targets"]:
        verdict = "met" if check["met"] else "MISSED"
        print(
            f"  {verdict:6} {check['target']}: {check['value']} "
            f"(limit {check['limit']})",
            file=out,
        )


# -- orchestration ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_site(options: BenchOptions, folder: Path) -> AsyncIterator[Site]:
    """Start the token server and prepare the database, config and key file."""
    server = ServerProcess("--port", "0")
    database: Database | None = None
    url = make_url(options.postgres_url)
    try:
        server.wait_ready()
        if options.backend == "postgres":
            await prepare_postgres(url)
            database_url = url.render_as_string(hide_password=False)
        else:
            database_url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        database = Database.from_url(database_url)
        await upgrade(database)

        key = EncryptionKey.generate(KEY_ID)
        site = Site(
            folder=folder,
            config=write_config(folder, database_url, key, options.worker.http_client),
            database=database,
            keyring=Keyring([key], primary=key.key_id),
            providers=bench_providers(server.url, datetime.now(UTC)),
            server=server,
            cprofile_dir=options.cprofile_dir,
        )
        await save_providers(database, site.providers)
        yield site
    finally:
        if database is not None:
            await database.dispose()
        server.stop()
        if options.backend == "postgres" and not options.keep_database:
            await drop_postgres(url)


async def run_benchmark(options: BenchOptions, folder: Path) -> dict[str, Any]:
    async with open_site(options, folder) as site:
        runs = []
        # Interleaved, so a slow phase of the machine hits every count alike.
        for repeat in range(1, options.repeats + 1):
            for count in options.workers:
                label = f"run{repeat}-k{count}"
                run = await throughput_run(site, count, label, options)
                print(_progress(run), flush=True)
                runs.append(run | {"repeat": repeat})

        memory = None
        if options.memory_due:
            small = await memory_run(site, options.memory_compare_due, options)
            large = await memory_run(site, options.memory_due, options)
            verdict = memory_verdict(small, large)
            memory = {"small": small, "large": large, "verdict": verdict}
        version = await server_version(site)

    summary = summarise(runs, options.workers)
    return {
        "benchmark": "worker",
        "backend": options.backend,
        "due": options.due,
        "worker_options": dataclasses.asdict(options.worker),
        "environment": describe(version),
        "runs": runs,
        "summary": summary,
        "memory": memory,
        "targets": check_targets(summary, memory),
    }


def _progress(run: dict[str, Any]) -> str:
    return (
        f"{run['workers']} worker(s): {run['refreshed']} refreshed in "
        f"{run['wall_seconds']} s, "
        f"{run['refreshes_per_second_per_process']}/s per process, "
        f"{run['worker_cpu_ms_per_refresh']} ms CPU per refresh"
    )


def parse_options(argv: Sequence[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.worker_bench",
        description="Benchmark linkvault worker processes against a local "
        "token endpoint.",
    )
    add = parser.add_argument
    add("--backend", choices=("postgres", "sqlite"), default="postgres")
    add("--due", type=int, default=20_000, help="Due connections per run.")
    add("--workers", default="1,2", help="Worker counts, comma-separated.")
    add("--repeats", type=int, default=3, help="Runs per worker count.")
    add("--batch-size", type=int, default=DEFAULT_WORKER.batch_size)
    add("--concurrency", type=int, default=DEFAULT_WORKER.concurrency)
    add(
        "--per-provider-concurrency",
        type=int,
        default=DEFAULT_WORKER.per_provider_concurrency,
    )
    add(
        "--poll-seconds",
        type=float,
        default=DEFAULT_WORKER.poll_seconds,
        help="Seconds between a worker's polls while idle; a run starts up to "
        "this much late.",
    )
    add(
        "--save-window-ms",
        type=float,
        default=DEFAULT_WORKER.save_window_ms,
        help="Milliseconds a finished refresh waits to share its transaction.",
    )
    add(
        "--http-client",
        choices=("aiohttp", "httpx"),
        default=DEFAULT_WORKER.http_client,
        help="HTTP client of the workers' token requests.",
    )
    add("--log-level", default=DEFAULT_WORKER.log_level, help="Worker log level.")
    add("--postgres-url", default=DEFAULT_POSTGRES_URL)
    add(
        "--keep-database",
        action="store_true",
        help="Keep the PostgreSQL benchmark database instead of dropping it.",
    )
    add(
        "--run-timeout",
        type=float,
        default=600.0,
        help="Seconds one throughput run may take before it fails.",
    )
    add(
        "--memory-due",
        type=int,
        default=0,
        help="Due connections of the large memory run; 0 skips the memory runs.",
    )
    add(
        "--memory-compare-due",
        type=int,
        default=100_000,
        help="Due connections of the small memory run.",
    )
    add(
        "--memory-seconds",
        type=float,
        default=90.0,
        help="Seconds each memory run lets its worker refresh.",
    )
    add(
        "--cprofile-dir",
        type=Path,
        help="Run the workers under cProfile and write NAME.prof files here; "
        "this inflates their CPU time.",
    )
    add("--out", type=Path, help="Result file; default bench/results/worker-*.json.")
    args = parser.parse_args(argv)

    worker = WorkerOptions(
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        per_provider_concurrency=args.per_provider_concurrency,
        poll_seconds=args.poll_seconds,
        save_window_ms=args.save_window_ms,
        log_level=args.log_level,
        http_client=args.http_client,
    )
    out = args.out or RESULTS_DIR / f"worker-{args.backend}-{args.due}.json"
    return BenchOptions(
        backend=args.backend,
        due=args.due,
        workers=tuple(int(part) for part in args.workers.split(",")),
        repeats=args.repeats,
        worker=worker,
        postgres_url=args.postgres_url,
        keep_database=args.keep_database,
        run_timeout=args.run_timeout,
        memory_due=args.memory_due,
        memory_compare_due=args.memory_compare_due,
        memory_seconds=args.memory_seconds,
        cprofile_dir=args.cprofile_dir.resolve() if args.cprofile_dir else None,
        out=out,
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    if options.cprofile_dir is not None:
        options.cprofile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="linkvault-worker-bench-") as folder:
        document = asyncio.run(run_benchmark(options, Path(folder)))

    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(document, indent=2) + "\n")
    print_report(document)
    print(f"Results written to {options.out}")


if __name__ == "__main__":
    main()
