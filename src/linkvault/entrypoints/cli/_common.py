"""Helpers every command shares: settings, the async runner and error output."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from linkvault.bootstrap import Services, build
from linkvault.config import Settings, load_settings
from linkvault.domain.errors import LinkvaultError

T = TypeVar("T")

# Messages carry ids and paths that must not be broken across lines.
console = Console(highlight=False, soft_wrap=True)
error_console = Console(stderr=True, highlight=False)


@dataclass(slots=True)
class CliState:
    """Global options, resolved into settings on first use."""

    config_file: Path | None = None
    database_url: str | None = None
    log_level: str | None = None

    def settings(self) -> Settings:
        overrides: dict[str, object] = {}
        if self.database_url:
            overrides["database_url"] = self.database_url
        if self.log_level:
            overrides["log_level"] = self.log_level
        return load_settings(self.config_file, **overrides)


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    # Messages quote config text such as `[[providers]]`, which Rich would
    # otherwise read as markup and drop.
    error_console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)


def run(work: Awaitable[T]) -> T:
    """Run a command's coroutine; project errors become one line and exit 1."""
    try:
        return asyncio.run(_guarded(work))
    except LinkvaultError as error:
        raise fail(str(error)) from None


async def _guarded(work: Awaitable[T]) -> T:
    return await work


def with_services(ctx: typer.Context, body: Callable[[Services], Awaitable[T]]) -> T:
    """Build the services from the settings, run `body`, and close them."""

    async def scope() -> T:
        services = build(state_of(ctx).settings())
        try:
            return await body(services)
        finally:
            await services.close()

    try:
        settings = state_of(ctx).settings()
    except LinkvaultError as error:
        raise fail(str(error)) from None
    configure_logging(settings.log_level)
    return run(scope())


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Library messages below WARNING carry nothing an operator needs, and
    # SQLAlchemy's engine log could show statements.
    for noisy in ("sqlalchemy", "alembic", "httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """Parse a UUID option or argument, or exit with a clear message."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(
            f"{what} {value!r} is not a valid UUID; pass the 36-character form, "
            "for example 0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b."
        ) from None
