"""`linkvault providers ...` through Typer's runner, on SQLite files in a temp dir."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from linkvault.adapters.crypto import load_keyring
from linkvault.application.client_secrets import resolve_client_credentials
from linkvault.bootstrap import build
from linkvault.config import load_settings
from linkvault.domain import Provider
from linkvault.entrypoints.cli import app

EXAMPLE_FILE = Path(__file__).parents[2] / "providers.example.toml"
SECRET = "cli-secret-5e6f7a"
# Wide enough that Rich never folds a table cell.
WIDE = {"COLUMNS": "200"}

ACME = """
[[providers]]
slug = "acme"
name = "Acme Bank"
credential_type = "oauth2"
authorization_url = "https://auth.acme.example/authorize"
token_url = "https://auth.acme.example/token"
client_id = "acme-client"
client_secret_env = "ACME_CLIENT_SECRET"
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(cli_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder without settings or secrets leaking in."""
    monkeypatch.delenv("ACME_CLIENT_SECRET", raising=False)


@pytest.fixture
def configured(runner: CliRunner, tmp_path: Path) -> Path:
    for command in (["init"], ["db", "upgrade"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    return tmp_path / "linkvault.toml"


def invoke(runner: CliRunner, *args: str, **kwargs: Any) -> Result:
    return runner.invoke(app, ["providers", *args], **kwargs)


def write_file(folder: Path, text: str, name: str = "providers.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def stored(config: Path, slug: str) -> Provider:
    """Read a provider straight from the database the CLI wrote."""

    async def fetch() -> Provider:
        services = build(load_settings(config))
        try:
            async with services.unit_of_work(readonly=True) as work:
                provider = await work.providers.get_by_slug(slug)
        finally:
            await services.close()
        assert provider is not None, f"provider {slug} is not stored"
        return provider

    return asyncio.run(fetch())


def stored_secret(config: Path, slug: str) -> str | None:
    keyring = load_keyring(key_file=load_settings(config).resolved_key_file)
    provider = stored(config, slug)
    return resolve_client_credentials(provider, keyring, {}).client_secret


def test_import_example_creates_providers(configured: Path, runner: CliRunner) -> None:
    result = invoke(runner, "import", str(EXAMPLE_FILE))

    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated, 0 unchanged" in result.output
    assert stored(configured, "schwab").token_url == (
        "https://api.schwabapi.com/v1/oauth/token"
    )


def test_import_twice_reports_unchanged(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))

    result = invoke(runner, "import", str(EXAMPLE_FILE))

    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 3 unchanged" in result.output


def test_import_update_keeps_id(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    invoke(runner, "import", str(write_file(tmp_path, ACME)))
    before = stored(configured, "acme")
    changed = write_file(tmp_path, ACME.replace("Acme Bank", "Acme"), "changed.toml")

    result = invoke(runner, "import", str(changed))
    after = stored(configured, "acme")

    assert result.exit_code == 0, result.output
    assert "0 created, 1 updated, 0 unchanged" in result.output
    assert after.id == before.id
    assert after.name == "Acme"


def test_import_malformed_file_fails(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    path = write_file(tmp_path, ACME.replace('"oauth2"', '"oauth3"'))

    result = invoke(runner, "import", str(path))

    assert result.exit_code == 1
    assert "provider 'acme', field credential_type" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_import_invalid_toml_fails(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "[[providers]\n")

    result = invoke(runner, "import", str(path))

    assert result.exit_code == 1
    assert "is not valid TOML" in result.output


def test_import_keeps_toml_brackets(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    path = write_file(tmp_path, '[providers.acme]\nname = "Acme"\n')

    result = invoke(runner, "import", str(path))

    assert result.exit_code == 1
    assert "[[providers]]" in result.output


def test_import_missing_file_fails(configured: Path, runner: CliRunner) -> None:
    result = invoke(runner, "import", "absent.toml")

    assert result.exit_code == 1
    assert "absent.toml does not exist" in result.output


def test_import_rejects_client_secret(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    path = write_file(tmp_path, ACME + f'client_secret = "{SECRET}"\n')

    result = invoke(runner, "import", str(path))

    assert result.exit_code == 1
    assert "set-secret acme" in result.output
    assert SECRET not in result.output


def test_list_shows_providers(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))

    result = invoke(runner, "list", env=WIDE)

    assert result.exit_code == 0, result.output
    assert "schwab" in result.output
    assert "Charles Schwab" in result.output
    assert "client_secret_basic" in result.output
    assert "$SCHWAB_CLIENT_SECRET" in result.output
    assert "3 provider(s)" in result.output


def test_list_empty_database(configured: Path, runner: CliRunner) -> None:
    result = invoke(runner, "list")

    assert result.exit_code == 0, result.output
    assert "0 provider(s)" in result.output


def test_add_creates_provider(configured: Path, runner: CliRunner) -> None:
    result = invoke(
        runner,
        *("add", "acme", "--name", "Acme Bank"),
        *("--authorization-url", "https://auth.acme.example/authorize"),
        *("--token-url", "https://auth.acme.example/token"),
        *("--client-id", "acme-client", "--scope", "read", "--scope", "write"),
        *("--no-pkce", "--authorize-param", "prompt=consent"),
        *("--refresh-token-clock", "fixed"),
        *("--refresh-token-lifetime-seconds", "604800"),
        *("--reauth-code", "unsupported_token_type"),
    )
    provider = stored(configured, "acme")

    assert result.exit_code == 0, result.output
    assert "Created provider acme." in result.output
    assert provider.scopes == ("read", "write")
    assert provider.use_pkce is False
    assert provider.extra_authorize_params == {"prompt": "consent"}
    assert provider.token_response.refresh_token_lifetime is not None
    assert provider.token_response.reauth_codes == {"unsupported_token_type"}


def test_add_again_updates_by_slug(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "add", "quotes", "--name", "Quotes", "--type", "api_key")
    before = stored(configured, "quotes")

    result = invoke(runner, "add", "quotes", "--name", "Quotes v2", "--type", "api_key")
    after = stored(configured, "quotes")

    assert result.exit_code == 0, result.output
    assert "Updated provider quotes" in result.output
    assert after.id == before.id
    assert after.name == "Quotes v2"


def test_add_same_definition_unchanged(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "add", "quotes", "--name", "Quotes", "--type", "api_key")

    result = invoke(runner, "add", "quotes", "--name", "Quotes", "--type", "api_key")

    assert result.exit_code == 0, result.output
    assert "Provider quotes is unchanged." in result.output


def test_add_rejects_plain_http(configured: Path, runner: CliRunner) -> None:
    result = invoke(
        runner,
        *("add", "acme", "--name", "Acme"),
        *("--authorization-url", "https://auth.acme.example/authorize"),
        *("--token-url", "http://auth.acme.example/token"),
        *("--client-id", "acme-client"),
    )

    assert result.exit_code == 1
    assert "field token_url" in result.output
    assert "allowed only for loopback hosts" in result.output


def test_add_rejects_missing_oauth_fields(configured: Path, runner: CliRunner) -> None:
    result = invoke(runner, "add", "acme", "--name", "Acme")

    assert result.exit_code == 1
    assert "missing authorization_url, token_url, client_id" in result.output


def test_add_rejects_malformed_param(configured: Path, runner: CliRunner) -> None:
    result = invoke(
        runner, "add", "quotes", "--name", "Q", "--authorize-param", "prompt"
    )

    assert result.exit_code == 1
    assert "is not KEY=VALUE" in result.output


def test_set_secret_from_env(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    invoke(runner, "import", str(write_file(tmp_path, ACME)))

    result = invoke(
        runner,
        "set-secret",
        "acme",
        "--from-env",
        "MY_SECRET",
        env={"MY_SECRET": SECRET},
    )
    provider = stored(configured, "acme")

    assert result.exit_code == 0, result.output
    assert "Stored the client secret of provider acme" in result.output
    assert "ACME_CLIENT_SECRET is set" in result.output
    assert SECRET not in result.output
    assert provider.client_secret_encrypted is not None
    assert SECRET.encode() not in provider.client_secret_encrypted
    assert stored_secret(configured, "acme") == SECRET


def test_set_secret_from_prompt(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    invoke(runner, "import", str(write_file(tmp_path, ACME)))

    result = invoke(runner, "set-secret", "acme", input=f"{SECRET}\n")

    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert stored_secret(configured, "acme") == SECRET


def test_set_secret_unknown_provider(configured: Path, runner: CliRunner) -> None:
    result = invoke(runner, "set-secret", "nope", input=f"{SECRET}\n")

    assert result.exit_code == 1
    assert "Provider nope was not found" in result.output
    assert "Client secret for" not in result.output


def test_set_secret_unset_variable(
    configured: Path, runner: CliRunner, tmp_path: Path
) -> None:
    invoke(runner, "import", str(write_file(tmp_path, ACME)))

    result = invoke(runner, "set-secret", "acme", "--from-env", "ABSENT_VARIABLE")

    assert result.exit_code == 1
    assert "ABSENT_VARIABLE is not set" in result.output


def test_set_secret_without_key_fails(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "linkvault.toml").write_text('log_level = "INFO"\n')
    runner.invoke(app, ["db", "upgrade"])
    invoke(runner, "import", str(write_file(tmp_path, ACME)))

    result = invoke(runner, "set-secret", "acme", input=f"{SECRET}\n")

    assert result.exit_code == 1
    assert "No encryption key is configured" in result.output
    assert "Client secret for" not in result.output
    assert "Traceback" not in result.output


def test_pause_then_resume(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))

    paused = invoke(runner, "pause", "schwab", "--reason", "invalid_client [setup]")
    while_paused = stored(configured, "schwab")
    listed = invoke(runner, "list", env=WIDE)
    resumed = invoke(runner, "resume", "schwab")
    after = stored(configured, "schwab")

    assert paused.exit_code == 0, paused.output
    assert while_paused.paused_at is not None
    assert while_paused.paused_reason == "invalid_client [setup]"
    assert "invalid_client [setup]" in listed.output
    assert resumed.exit_code == 0, resumed.output
    assert after.paused_at is None
    assert after.paused_reason is None


def test_pause_again_keeps_start(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))
    invoke(runner, "pause", "schwab", "--reason", "first")
    first = stored(configured, "schwab")

    invoke(runner, "pause", "schwab", "--reason", "second")
    second = stored(configured, "schwab")

    assert second.paused_at == first.paused_at
    assert second.paused_reason == "second"


def test_pause_needs_reason(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))

    result = invoke(runner, "pause", "schwab", "--reason", "  ")

    assert result.exit_code == 1
    assert "--reason is empty" in result.output


def test_resume_not_paused_is_noop(configured: Path, runner: CliRunner) -> None:
    invoke(runner, "import", str(EXAMPLE_FILE))

    result = invoke(runner, "resume", "schwab")

    assert result.exit_code == 0, result.output
    assert "is not paused; nothing changed" in result.output


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pause_resume_unknown_provider(
    configured: Path, runner: CliRunner, command: str
) -> None:
    extra = ["--reason", "x"] if command == "pause" else []

    result = invoke(runner, command, "nope", *extra)

    assert result.exit_code == 1
    assert "Provider nope was not found" in result.output
