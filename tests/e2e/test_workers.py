"""Worker processes against the sandbox: no refresh token is redeemed twice.

Each test runs real `linkvault worker` processes that share a config file, a
key file and a database with the test process. The sandbox authorization
server rotates the refresh token on every use, and a replayed refresh token
counts a reuse detection and revokes its grant, so a double redemption cannot
go unnoticed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from harness import ENVIRON, sandbox_provider
from sandbox_process import SandboxHandle
from worker_process import (
    STOP_TIMEOUT,
    WorkerHandle,
    running_workers,
    start_worker,
)

from linkvault.adapters.crypto import EncryptionKey, Keyring, write_key_file
from linkvault.adapters.crypto.keyring import key_file_line
from linkvault.adapters.sqlalchemy.database import Database
from linkvault.adapters.sqlalchemy.migrate import upgrade
from linkvault.adapters.sqlalchemy.tables import provider_connections
from linkvault.application.connect import AuthorizationCallback, ConnectService
from linkvault.application.credentials import open_token_set, seal_token_set
from linkvault.application.refresh import RefreshService
from linkvault.bootstrap import Services, build
from linkvault.config import load_settings
from linkvault.domain import (
    ConnectionStatus,
    EventType,
    Provider,
    ProviderConnection,
    TokenSet,
)

pytestmark = pytest.mark.e2e

KEY_ID = "workers"
# Any loopback port is a valid redirect URI (RFC 8252 section 7.3). Nothing
# listens on this one, because `connect_users` reads the redirect instead of
# following it.
REDIRECT_URI = "http://127.0.0.1:8400/callback"
CONNECT_CONCURRENCY = 10
# Closer to expiry than the default 30-second skew, so `get_access_token`
# wants to refresh too.
NEAR_EXPIRY = timedelta(seconds=5)
# Seconds to wait for workers to settle everything that is due.
SETTLE_TIMEOUT = 180.0
POLL_SECONDS = 0.05
FAST_POLL = ("--poll-seconds", "0.1")

_T = provider_connections


@dataclass
class Site:
    """A linkvault installation that the test and its worker processes share."""

    config: Path
    services: Services
    provider: Provider
    sandbox: SandboxHandle
    key: EncryptionKey

    @property
    def keyring(self) -> Keyring:
        return self.services.keyring

    def start_worker(self, *options: str, log_level: str = "INFO") -> WorkerHandle:
        return start_worker(
            self.config, *FAST_POLL, *options, environ=ENVIRON, log_level=log_level
        )

    @contextmanager
    def workers(
        self, count: int, *options: str, log_level: str = "INFO"
    ) -> Iterator[list[WorkerHandle]]:
        with running_workers(
            self.config,
            count,
            *FAST_POLL,
            *options,
            environ=ENVIRON,
            log_level=log_level,
        ) as handles:
            yield handles

    def refresh_service(self, owner: str) -> RefreshService:
        return RefreshService(
            self.services.unit_of_work,
            self.keyring,
            self.services.clock,
            self.services.token_endpoint,
            ENVIRON,
            owner=owner,
        )


@asynccontextmanager
async def open_site(
    folder: Path, database_url: str, sandbox: SandboxHandle
) -> AsyncIterator[Site]:
    """Write linkvault.toml and a key file, migrate, and store the provider."""
    key = EncryptionKey.generate(KEY_ID)
    write_key_file(folder / "linkvault.keys", [key], KEY_ID)
    config = folder / "linkvault.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        'key_file = "linkvault.keys"\n'
        'log_level = "INFO"\n'
    )
    # Explicit values, so LINKVAULT_* variables of the test run cannot point
    # the test process elsewhere than its workers.
    settings = load_settings(
        config, database_url=database_url, key_file=folder / "linkvault.keys"
    )
    services = build(settings)
    try:
        await upgrade(services.database)
        provider = sandbox_provider("sandbox", sandbox.url)
        async with services.unit_of_work() as work:
            await work.providers.save(provider)
        yield Site(config, services, provider, sandbox, key)
    finally:
        await services.close()


async def _run_sql(url: sa.URL, statement: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction block.
    database = Database.from_url(url, isolation_level="AUTOCOMMIT")
    try:
        async with database.engine.connect() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await database.dispose()


@pytest.fixture
async def postgres_url(postgres_base_url: str) -> AsyncIterator[str]:
    """A new PostgreSQL database, because worker processes read their URL from
    the config file and cannot share the test run's schema."""
    base = sa.make_url(postgres_base_url)
    name = f"lv_workers_{uuid.uuid4().hex[:8]}"
    await _run_sql(base, f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await _run_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def site(
    database_url: str, sandbox: SandboxHandle, tmp_path: Path
) -> AsyncIterator[Site]:
    async with open_site(tmp_path, database_url, sandbox) as opened:
        yield opened


@pytest.fixture
async def sqlite_site(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Site]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    async with open_site(tmp_path, url, sandbox) as opened:
        yield opened


# -- helpers -----------------------------------------------------------------


async def connect_users(site: Site, count: int) -> list[ProviderConnection]:
    """Connect `count` new users through the authorization code flow.

    The browser's redirect is read from the Location header instead of being
    followed, so no callback server runs. The code and state in it are the
    ones a callback server would receive.
    """
    service = ConnectService(
        site.services.unit_of_work,
        site.keyring,
        site.services.clock,
        site.services.token_endpoint,
        ENVIRON,
    )
    slots = asyncio.Semaphore(CONNECT_CONCURRENCY)
    async with httpx.AsyncClient(trust_env=False) as browser:

        async def connect_one() -> ProviderConnection:
            async with slots:
                return await _connect_user(site, service, browser)

        return list(await asyncio.gather(*(connect_one() for _ in range(count))))


async def _connect_user(
    site: Site, service: ConnectService, browser: httpx.AsyncClient
) -> ProviderConnection:
    user = uuid.uuid4()
    request = await service.start_authorization(
        user_id=user,
        provider_slug=site.provider.slug,
        redirect_uri=REDIRECT_URI,
        extra_params={"login_hint": str(user)},
    )
    response = await browser.get(request.url)
    assert response.is_redirect, response.text
    query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    connection = await service.complete_authorization(
        AuthorizationCallback.from_query(query),
        provider_slug=site.provider.slug,
        redirect_uri=REDIRECT_URI,
    )
    assert connection.status is ConnectionStatus.ACTIVE
    return connection


async def make_due(site: Site, ids: Sequence[uuid.UUID]) -> None:
    """Make connections due now, with access tokens about to expire.

    One transaction, so every connection comes due at the same moment.
    """
    now = site.services.clock.now()
    async with site.services.unit_of_work() as work:
        for connection_id in ids:
            connection = await work.connections.find_by_id(connection_id)
            assert connection is not None
            tokens = open_token_set(site.keyring, connection)
            soon = dataclasses.replace(tokens, expires_at=now + NEAR_EXPIRY)
            connection.replace_credentials(
                seal_token_set(site.keyring, connection, soon),
                now,
                next_refresh_at=now,
            )
            await work.connections.save(connection)


async def load_all(
    site: Site, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ProviderConnection]:
    found: dict[uuid.UUID, ProviderConnection] = {}
    async with site.services.unit_of_work(readonly=True) as work:
        for connection_id in ids:
            connection = await work.connections.find_by_id(connection_id)
            assert connection is not None
            found[connection_id] = connection
    return found


async def token_sets(site: Site, ids: Sequence[uuid.UUID]) -> list[TokenSet]:
    stored = await load_all(site, ids)
    return [open_token_set(site.keyring, c) for c in stored.values()]


async def leases(site: Site) -> dict[uuid.UUID, tuple[str, datetime]]:
    """Return the owner and expiry of every lease row, live or expired."""
    statement = sa.select(_T.c.id, _T.c.lease_owner, _T.c.lease_expires_at).where(
        _T.c.lease_owner.is_not(None)
    )
    async with site.services.database.session(readonly=True) as session:
        rows = (await session.execute(statement)).all()
    return {row[0]: (row[1], row[2]) for row in rows}


async def unsettled(site: Site) -> int:
    """Count connections that are leased, or active and due."""
    due = sa.and_(
        _T.c.status == ConnectionStatus.ACTIVE.value,
        _T.c.next_refresh_at <= site.services.clock.now(),
    )
    statement = (
        sa.select(sa.func.count())
        .select_from(_T)
        .where(sa.or_(_T.c.lease_owner.is_not(None), due))
    )
    async with site.services.database.session(readonly=True) as session:
        return int((await session.execute(statement)).scalar_one())


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    description: str,
    workers: Sequence[WorkerHandle] = (),
    seconds: float = SETTLE_TIMEOUT,
) -> None:
    """Poll `condition` until it holds; fail with the workers' output if not."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                # State lives in other processes, so it is polled, not awaited.
                if await condition():
                    return
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        output = "\n".join(worker.output()[-5000:] for worker in workers)
        pytest.fail(
            f"Still not {description} after {seconds} s. Worker output:\n{output}"
        )


async def wait_until_settled(site: Site, workers: Sequence[WorkerHandle]) -> None:
    async def settled() -> bool:
        return await unsettled(site) == 0

    await wait_for(settled, "settled (no lease, nothing due)", workers)


async def wait_for_delayed_requests(site: Site) -> None:
    """Wait until every queued `delay` fault has been taken by a token request.

    The sandbox takes a fault when the request arrives, then pauses the request
    for the delay before it redeems the refresh token.
    """

    async def drained() -> bool:
        pending: list[Any] = site.sandbox.admin("GET", "faults").json()
        return pending == []

    await wait_for(drained, "every delayed token request in flight", seconds=30.0)


def grants_by_user(site: Site) -> dict[str, dict[str, Any]]:
    return {grant["user"]: grant for grant in site.sandbox.grants()}


def sha256(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def rotation_saved(
    site: Site, connection: ProviderConnection, grant: dict[str, Any]
) -> bool:
    """Whether the stored refresh token is the one the sandbox expects next."""
    tokens = open_token_set(site.keyring, connection)
    expected: str | None = grant["refresh_token_sha256"]
    return sha256(tokens.refresh_token) == expected


# -- many workers, one refresh per connection ---------------------------------


async def test_workers_refresh_each_connection_once(site: Site) -> None:
    worker_count = 4 if site.services.database.dialect_name == "postgresql" else 2
    connections = await connect_users(site, 500)
    ids = [connection.id for connection in connections]
    api = site.refresh_service("api")
    # Fifty callers: 25 connections spread over the claim order, two callers
    # each, so in-process sharing and cross-process waiting both happen.
    targets = ids[::20] * 2

    options = ("--batch-size", "20", "--concurrency", "10")
    with site.workers(worker_count, *options) as workers:
        await make_due(site, ids)

        async def claimed() -> bool:
            return bool(await leases(site))

        # Start the callers once workers hold leases, so that they race.
        await wait_for(claimed, "claimed by a worker", workers)
        served = await asyncio.gather(*(api.get_access_token(t) for t in targets))
        await wait_until_settled(site, workers)
        exit_codes = [worker.terminate() for worker in workers]

    stored = await load_all(site, ids)
    grants = grants_by_user(site)
    by_id = {c.id: grants[str(c.user_id)] for c in stored.values()}
    stats = site.sandbox.stats()
    assert stats["reuse_detections"] == 0
    assert [i for i in ids if by_id[i]["refreshes"] != 1] == []
    assert [i for i in ids if stored[i].status is not ConnectionStatus.ACTIVE] == []
    assert [i for i in ids if not rotation_saved(site, stored[i], by_id[i])] == []
    assert stats["refreshes"] == len(ids)
    for target, token in zip(targets, served, strict=True):
        assert token == open_token_set(site.keyring, stored[target]).access_token
    assert exit_codes == [0] * worker_count


# -- leases that run out while refreshes wait their turn ------------------------


async def test_late_refresh_renews_its_lease(sqlite_site: Site) -> None:
    site = sqlite_site
    connections = await connect_users(site, 6)
    ids = [connection.id for connection in connections]
    await make_due(site, ids)
    # One refresh at a time, 0.8 s each: the last ones of the batch start after
    # the 3-second lease of their claim has run out.
    site.sandbox.add_fault(mode="delay", count=6, delay_seconds=0.8)
    slow = site.start_worker(
        "--lease-seconds", "3", "--concurrency", "1", "--batch-size", "6"
    )
    try:
        slow.wait_ready()

        async def slow_holds_all() -> bool:
            return len(await leases(site)) == len(ids)

        await wait_for(slow_holds_all, "claimed by the slow worker", [slow])
        with site.workers(1) as (other,):
            await wait_until_settled(site, [slow, other])
            exit_codes = [slow.terminate(), other.terminate()]
    finally:
        slow.stop()

    stored = await load_all(site, ids)
    grants = grants_by_user(site)
    by_id = {i: grants[str(stored[i].user_id)] for i in ids}
    assert site.sandbox.stats()["reuse_detections"] == 0
    assert [i for i in ids if by_id[i]["refreshes"] != 1] == []
    assert [i for i in ids if stored[i].status is not ConnectionStatus.ACTIVE] == []
    assert [i for i in ids if not rotation_saved(site, stored[i], by_id[i])] == []
    assert exit_codes == [0, 0]


# -- a killed worker ------------------------------------------------------------


async def test_killed_worker_leases_expire(sqlite_site: Site) -> None:
    site = sqlite_site
    connections = await connect_users(site, 10)
    ids = [connection.id for connection in connections]
    await make_due(site, ids)
    # The delay keeps two refreshes in flight while the test kills the worker.
    # The lease outlasts the delay, so the next worker must wait for its expiry.
    site.sandbox.add_fault(mode="delay", count=2, delay_seconds=2.0)
    victim = site.start_worker(
        "--lease-seconds", "6", "--concurrency", "2", "--batch-size", "10"
    )
    try:
        victim.wait_ready()
        await wait_for_delayed_requests(site)
        leased = await leases(site)
        victim.kill()
    finally:
        victim.stop()
    assert sorted(leased) == sorted(ids)
    assert {owner for owner, _ in leased.values()} == {victim.owner}

    # The sandbox finishes the two delayed requests although their client is
    # dead: it rotates both refresh tokens, and the new ones are lost with the
    # worker. Waiting for that first keeps the outcome deterministic.
    async def lost_rotations_done() -> bool:
        return site.sandbox.stats()["refreshes"] == 2

    await wait_for(lost_rotations_done, "done with the delayed requests", [victim])
    grants = grants_by_user(site)
    in_flight = {c.id for c in connections if grants[str(c.user_id)]["refreshes"]}

    with site.workers(1) as (rescuer,):
        await wait_until_settled(site, [rescuer])
        assert rescuer.terminate() == 0

    stored = await load_all(site, ids)
    grants = grants_by_user(site)
    queued = [i for i in ids if i not in in_flight]
    assert len(in_flight) == 2
    # A later refresh presents the replaced refresh token. The sandbox counts
    # that as a reuse and returns invalid_grant, so the user must reconnect:
    # `expired` is the correct end state, not a stuck one.
    for connection_id in in_flight:
        assert stored[connection_id].status is ConnectionStatus.EXPIRED
        assert "invalid_grant" in (stored[connection_id].status_reason or "")
    assert site.sandbox.stats()["reuse_detections"] == 2
    for connection_id in queued:
        grant = grants[str(stored[connection_id].user_id)]
        assert stored[connection_id].status is ConnectionStatus.ACTIVE
        assert grant["refreshes"] == 1
        assert rotation_saved(site, stored[connection_id], grant)
    # The rescuer only started once the killed worker's leases had expired.
    for connection_id in ids:
        assert await last_event_at(site, connection_id) >= leased[connection_id][1]
    assert await leases(site) == {}
    assert await unsettled(site) == 0


async def last_event_at(site: Site, connection_id: uuid.UUID) -> datetime:
    """Return when the last refresh outcome of a connection was recorded."""
    async with site.services.unit_of_work(readonly=True) as work:
        events = await work.events.list_for_connection(connection_id)
    final = events[-1]
    assert final.event_type in (EventType.REFRESHED, EventType.EXPIRED)
    return final.occurred_at


# -- stopping ---------------------------------------------------------------------


async def test_sigterm_finishes_in_flight_refreshes(sqlite_site: Site) -> None:
    site = sqlite_site
    connections = await connect_users(site, 6)
    ids = [connection.id for connection in connections]
    await make_due(site, ids)
    site.sandbox.add_fault(mode="delay", count=2, delay_seconds=2.0)
    worker = site.start_worker("--concurrency", "2", "--batch-size", "6")
    try:
        worker.wait_ready()
        await wait_for_delayed_requests(site)
        exit_code = worker.terminate()
    finally:
        worker.stop()

    stored = await load_all(site, ids)
    grants = grants_by_user(site)
    by_id = {i: grants[str(stored[i].user_id)] for i in ids}
    refreshed = [i for i in ids if by_id[i]["refreshes"]]
    untouched = [i for i in ids if i not in refreshed]
    output = worker.output()
    assert exit_code == 0
    assert len(refreshed) == 2
    for connection_id in refreshed:
        assert rotation_saved(site, stored[connection_id], by_id[connection_id])
    # Refreshes that had not started are left to other workers, still due.
    for connection_id in untouched:
        due_at = stored[connection_id].next_refresh_at
        assert stored[connection_id].status is ConnectionStatus.ACTIVE
        assert due_at is not None
        assert due_at <= site.services.clock.now()
        assert rotation_saved(site, stored[connection_id], by_id[connection_id])
    assert await leases(site) == {}
    assert site.sandbox.stats()["reuse_detections"] == 0
    assert f"Worker {worker.owner} started" in output
    assert f"Worker {worker.owner} stopped" in output


async def test_once_processes_due_then_exits(sqlite_site: Site) -> None:
    site = sqlite_site
    connections = await connect_users(site, 5)
    due = [connection.id for connection in connections[:3]]
    await make_due(site, due)
    worker = site.start_worker("--once")
    try:
        worker.wait_ready()
        exit_code = worker.wait(STOP_TIMEOUT)
    finally:
        worker.stop()

    grants = grants_by_user(site)
    refreshes = {c.id: grants[str(c.user_id)]["refreshes"] for c in connections}
    output = worker.output()
    assert exit_code == 0
    assert [refreshes[c.id] for c in connections] == [1, 1, 1, 0, 0]
    assert await leases(site) == {}
    assert f"Worker {worker.owner} started for one pass" in output
    assert f"Worker {worker.owner} finished one pass" in output


# -- secrets ---------------------------------------------------------------------


async def test_worker_logs_hold_no_secret(sqlite_site: Site) -> None:
    site = sqlite_site
    connections = await connect_users(site, 4)
    ids = [connection.id for connection in connections]
    before = await token_sets(site, ids)
    await make_due(site, ids)
    # One retry and one rejected refresh token, so the error paths log too.
    site.sandbox.add_fault(mode="status_500", count=1)
    site.sandbox.add_fault(mode="invalid_grant", count=1)

    with site.workers(1, log_level="DEBUG") as (worker,):
        await wait_until_settled(site, [worker])
        assert worker.terminate() == 0

    after = await token_sets(site, ids)
    secrets: dict[str, str] = {"client secret": ENVIRON["SANDBOX_CLIENT_SECRET"]}
    secrets["encryption key"] = key_file_line(site.key).partition(":")[2]
    for index, tokens in enumerate([*before, *after]):
        secrets[f"access token {index}"] = tokens.access_token
        if tokens.refresh_token is not None:
            secrets[f"refresh token {index}"] = tokens.refresh_token
    output = worker.output()
    assert " DEBUG " in output
    assert "retry at" in output
    assert "is now expired" in output
    rotated = [
        a
        for a, b in zip(after, before, strict=True)
        if a.refresh_token != b.refresh_token
    ]
    assert len(rotated) == 2
    assert [name for name, value in secrets.items() if value in output] == []
