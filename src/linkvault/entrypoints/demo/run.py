"""The demo's flow, from an empty folder to the final checks.

1. Create the folder with a config file, a fresh key and a SQLite database.
2. Start the sandbox authorization server with 20-second access tokens.
3. Register it as the `sandbox` provider and connect every user through the
   authorization code flow with PKCE.
4. Run the worker processes side by side under a live view, and queue a
   burst of HTTP 500 and 429 responses part-way through (`watch`).
5. Stop the workers with SIGTERM, then compare every stored refresh token
   with the one the sandbox reports as current.

Every child process is stopped on the way out, also after an error, Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from linkvault.adapters.sqlalchemy.migrate import upgrade
from linkvault.application.connect import ConnectService
from linkvault.bootstrap import Services, build
from linkvault.entrypoints.cli.worker import READY_PREFIX as WORKER_READY
from linkvault.entrypoints.demo.connect import (
    CLIENT_SECRET_ENV,
    connect_users,
    register_provider,
    sandbox_provider,
)
from linkvault.entrypoints.demo.processes import (
    LINKVAULT_COMMAND,
    ChildProcess,
    child_environment,
)
from linkvault.entrypoints.demo.sandbox import (
    ACCESS_TOKEN_LIFETIME,
    SandboxAdmin,
    start_sandbox_process,
)
from linkvault.entrypoints.demo.summary import DemoSummary, WorkerReport, check_tokens
from linkvault.entrypoints.demo.view import render_summary
from linkvault.entrypoints.demo.watch import watch_workers
from linkvault.entrypoints.demo.workspace import (
    Workspace,
    create_workspace,
    logging_to,
    worker_names,
)
from linkvault.sandbox.settings import DEFAULT_CONFIDENTIAL_CLIENT_SECRET

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Options of one `linkvault demo` run."""

    folder: Path | None = None
    users: int = 200
    # Seconds the workers run.
    duration: float = 60.0
    workers: int = 2
    log_level: str = "INFO"


async def run_demo(options: DemoOptions, console: Console) -> DemoSummary:
    """Run the whole demo and return its summary, whose `passed` is the verdict.

    Raises:
        DemoError: A step could not complete. The message names the log file.
    """
    workspace = create_workspace(options.folder)
    _announce(workspace, options, console)
    with logging_to(workspace.log_file("demo"), options.log_level):
        return await _run_with_cleanup(options, workspace, console)


async def _run_with_cleanup(
    options: DemoOptions, workspace: Workspace, console: Console
) -> DemoSummary:
    # SIGTERM cancels the demo like Ctrl-C does, so the children are stopped.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    services = build(workspace.settings())
    try:
        async with contextlib.AsyncExitStack() as children:
            return await _run(options, workspace, services, children, console)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await services.close()


def _announce(workspace: Workspace, options: DemoOptions, console: Console) -> None:
    # Soft wrap keeps each path on one line, whatever the terminal width.
    console.print(
        f"Working in {workspace.folder} (config, key file, SQLite database, logs).",
        soft_wrap=True,
    )
    names = ["demo", "sandbox", *worker_names(options.workers)]
    for name in names:
        console.print(f"  {name} log: {workspace.log_file(name)}", soft_wrap=True)


async def _run(
    options: DemoOptions,
    workspace: Workspace,
    services: Services,
    children: contextlib.AsyncExitStack,
    console: Console,
) -> DemoSummary:
    await upgrade(services.database)
    sandbox = start_sandbox_process(workspace, options.log_level)
    children.callback(sandbox.process.kill)
    url = await sandbox.wait_ready()
    children.push_async_callback(sandbox.admin.aclose)
    console.print(
        f"Sandbox authorization server at {url}: access tokens live "
        f"{ACCESS_TOKEN_LIFETIME} s, refresh tokens rotate on every use."
    )

    await register_provider(services, sandbox_provider(url))
    await _connect(services, options.users, console)

    workers = _start_workers(workspace, options)
    for worker in workers:
        children.callback(worker.kill)
    await asyncio.gather(*(worker.wait_for_line(WORKER_READY) for worker in workers))
    await watch_workers(
        workers,
        users=options.users,
        duration=options.duration,
        workspace=workspace,
        services=services,
        admin=sandbox.admin,
        console=console,
    )

    summary = await _finish(options, workspace, services, sandbox.admin, workers)
    await sandbox.process.stop()
    console.print(render_summary(summary))
    console.print(
        f"Explore it: linkvault --config {workspace.config} connections list",
        soft_wrap=True,
    )
    return summary


async def _connect(services: Services, users: int, console: Console) -> None:
    environ = {**os.environ, CLIENT_SECRET_ENV: DEFAULT_CONFIDENTIAL_CLIENT_SECRET}
    service = ConnectService(
        services.unit_of_work,
        services.keyring,
        services.clock,
        services.token_endpoint,
        environ,
    )
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress("Connecting users", *columns, console=console) as progress:
        bar = progress.add_task("connect", total=users)
        await connect_users(service, users, lambda _: progress.advance(bar))
    logger.info("Connected %d users to the sandbox", users)


def _start_workers(workspace: Workspace, options: DemoOptions) -> list[ChildProcess]:
    # The client secret travels in the environment: a command line is
    # visible to every local user in the process list.
    env = child_environment({CLIENT_SECRET_ENV: DEFAULT_CONFIDENTIAL_CLIENT_SECRET})
    workers = []
    for name in worker_names(options.workers):
        argv = [
            *LINKVAULT_COMMAND,
            f"--config={workspace.config}",
            f"--log-level={options.log_level}",
            "worker",
            f"--stats-file={workspace.stats_file(name)}",
        ]
        log = workspace.log_file(name)
        workers.append(ChildProcess.start(name, argv, env=env, log=log))
    return workers


async def _finish(
    options: DemoOptions,
    workspace: Workspace,
    services: Services,
    admin: SandboxAdmin,
    workers: list[ChildProcess],
) -> DemoSummary:
    codes = await asyncio.gather(*(worker.stop() for worker in workers))
    reports = tuple(
        WorkerReport.read(
            worker.name, workspace.stats_file(worker.name), exit_code=code
        )
        for worker, code in zip(workers, codes, strict=True)
    )

    # The workers are gone, so neither the database nor the grants move now.
    async with services.unit_of_work(readonly=True) as work:
        statuses = await work.connections.count_by_status()
    tokens = await check_tokens(services, await admin.grants())
    summary = DemoSummary(
        users=options.users,
        workers=reports,
        statuses=statuses,
        sandbox_stats=await admin.stats(),
        tokens=tokens,
    )
    logger.info(
        "Demo %s: %d refreshes, %d reuse detections, %d of %d tokens current",
        "passed" if summary.passed else "failed",
        summary.refreshed,
        summary.reuse_detections,
        tokens.current,
        tokens.active,
    )
    return summary
