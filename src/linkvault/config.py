"""Settings from `linkvault.toml` and `LINKVAULT_*` environment variables.

Precedence, highest first: explicit arguments, environment variables, the
config file. The config file is the `--config` option, else
`LINKVAULT_CONFIG`, else `./linkvault.toml` when it exists. Relative paths in
the file are resolved against the file's folder, so the default SQLite
database and key file sit beside the config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

from linkvault.adapters.oauth.transports import HttpClientName
from linkvault.domain.errors import ConfigurationError

CONFIG_ENV = "LINKVAULT_CONFIG"
DEFAULT_CONFIG_NAME = "linkvault.toml"
DEFAULT_DATABASE_NAME = "linkvault.db"
DEFAULT_KEY_FILE_NAME = "linkvault.keys"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """linkvault's settings; every field can be set as `LINKVAULT_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="LINKVAULT_", extra="forbid", validate_default=True
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file beside the config.",
    )
    key_file: Path | None = Field(
        default=None,
        description="Key file; default: LINKVAULT_KEYS or LINKVAULT_KEY_FILE.",
    )
    log_level: LogLevel = "INFO"
    http_client: HttpClientName = Field(
        default="aiohttp",
        description="HTTP client of token requests: aiohttp or httpx.",
    )
    # The folder relative paths are resolved against; set by `load_settings`.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML source reads `toml_file` from the model config, which
        # `load_settings` sets on a subclass; plain `Settings()` reads no file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to `linkvault.db` beside the config."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.base_dir / DEFAULT_DATABASE_NAME}"
        url = make_url(self.database_url)
        is_file = url.get_backend_name() == "sqlite" and url.database
        if is_file and url.database != ":memory:":
            path = Path(str(url.database))
            if not path.is_absolute():
                url = url.set(database=str(self.base_dir / path))
        return url.render_as_string(hide_password=False)

    @property
    def resolved_key_file(self) -> Path | None:
        if self.key_file is None:
            return None
        return (
            self.key_file
            if self.key_file.is_absolute()
            else self.base_dir / self.key_file
        )


def find_config_file(explicit: Path | None = None) -> Path | None:
    """Return the config file: explicit, `LINKVAULT_CONFIG`, or ./linkvault.toml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.exists() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the config file, the environment and `overrides`.

    Raises:
        ConfigurationError: The config file is missing or unreadable, or a value
            is invalid. The message names the file and the field.
    """
    path = find_config_file(config_file)
    if path is not None and not path.is_file():
        raise ConfigurationError(
            f"Config file {path} does not exist; run `linkvault init` to create "
            f"one, or unset {CONFIG_ENV}."
        )

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        base_dir = path.resolve().parent if path else Path.cwd()
        return FileSettings(base_dir=base_dir, **overrides)
    except ValidationError as error:
        raise ConfigurationError(_describe(error, path)) from error
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"Config file {path} could not be read ({error}); fix its TOML syntax."
        ) from error


def _describe(error: ValidationError, path: Path | None) -> str:
    source = f"config file {path} or LINKVAULT_* variables" if path else "settings"
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    )
    return f"Invalid {source}: {problems}."


def render_config(database_url: str | None, key_file: Path) -> str:
    """Return the text of a new `linkvault.toml`."""
    lines = [
        "# linkvault settings. Every value can be overridden by LINKVAULT_<NAME>.",
        "# Relative paths are resolved against this file's folder.",
        f'key_file = "{key_file}"',
        'log_level = "INFO"',
    ]
    if database_url:
        lines.insert(2, f'database_url = "{database_url}"')
    else:
        lines.insert(
            2, f'# database_url = "sqlite+aiosqlite:///{DEFAULT_DATABASE_NAME}"'
        )
    return "\n".join(lines) + "\n"
