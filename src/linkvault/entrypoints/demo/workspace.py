"""The demo's throwaway folder: config, key file, SQLite database and logs."""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from linkvault.adapters.crypto import EncryptionKey, write_key_file
from linkvault.config import (
    DEFAULT_CONFIG_NAME,
    DEFAULT_DATABASE_NAME,
    DEFAULT_KEY_FILE_NAME,
    Settings,
    load_settings,
    render_config,
)
from linkvault.entrypoints.demo.errors import DemoError

# Loggers that would write request URLs (with authorization codes) or SQL at
# INFO and below, so the demo's log keeps them at WARNING.
_QUIET_LOGGERS = ("httpx", "httpcore", "sqlalchemy", "alembic", "aiosqlite", "asyncio")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class Workspace:
    """Paths inside the demo's folder."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / DEFAULT_CONFIG_NAME

    @property
    def database(self) -> Path:
        return self.folder / DEFAULT_DATABASE_NAME

    @property
    def key_file(self) -> Path:
        return self.folder / DEFAULT_KEY_FILE_NAME

    def log_file(self, process: str) -> Path:
        """Return the file that receives the output of `process`."""
        return self.folder / f"{process}.log"

    def stats_file(self, worker: str) -> Path:
        """Return the `--stats-file` of `worker`."""
        return self.folder / f"{worker}.stats.json"

    def settings(self) -> Settings:
        """Load the demo's settings with the SQLite file and key file pinned.

        Pinning them keeps `LINKVAULT_DATABASE_URL` and similar variables of
        the caller's shell from pointing the demo at a real database.
        """
        return load_settings(
            self.config,
            database_url=f"sqlite+aiosqlite:///{self.database}",
            key_file=self.key_file,
        )


def worker_names(count: int) -> list[str]:
    """Return the names of `count` workers, which name their log and stats files."""
    return [f"worker-{number}" for number in range(1, count + 1)]


def create_workspace(folder: Path | None) -> Workspace:
    """Create the folder with a config file and a fresh key.

    Raises:
        DemoError: The folder already contains a database, whose rows a new
            key could not decrypt.
    """
    folder = folder or Path(tempfile.mkdtemp(prefix="linkvault-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(folder.resolve())
    if workspace.database.exists():
        raise DemoError(
            f"{workspace.database} exists from an earlier run; pass --dir with an "
            "empty folder, or delete that folder first."
        )

    key_id = f"demo-{secrets.token_hex(4)}"
    write_key_file(
        workspace.key_file, [EncryptionKey.generate(key_id)], key_id, overwrite=True
    )
    workspace.config.write_text(render_config(None, Path(DEFAULT_KEY_FILE_NAME)))
    return workspace


@contextlib.contextmanager
def logging_to(path: Path, level: str) -> Iterator[None]:
    """Send this process's log records to `path` until the block ends.

    The terminal belongs to the live view, so the demo's own log goes to a
    file next to those of the sandbox and the workers. The previous handlers
    and levels come back afterwards.
    """
    root = logging.getLogger()
    quiet = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    saved_handlers = list(root.handlers)
    saved_levels = [root.level, *(logger.level for logger in quiet)]

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root.handlers = [handler]
    root.setLevel(level)
    for logger in quiet:
        logger.setLevel(max(logging.WARNING, root.level))
    try:
        yield
    finally:
        root.handlers = saved_handlers
        for logger, saved in zip([root, *quiet], saved_levels, strict=True):
            logger.setLevel(saved)
        handler.close()
