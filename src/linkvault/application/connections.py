"""Use cases on stored connections that need no provider call."""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID

from linkvault.domain.errors import ConnectionNotFoundError
from linkvault.domain.events import ConnectionEvent, EventType
from linkvault.ids import new_id
from linkvault.ports.clock import Clock
from linkvault.ports.repositories import ConnectionRepository, EventLog

logger = logging.getLogger(__name__)


class ConnectionsWork(Protocol):
    """The repositories a connection use case needs, in one transaction."""

    @property
    def connections(self) -> ConnectionRepository: ...

    @property
    def events(self) -> EventLog: ...


async def delete_connection(
    work: ConnectionsWork, connection_id: UUID, clock: Clock, *, actor: str
) -> None:
    """Delete a connection for good and append a `deleted` event to its history.

    Raises:
        ConnectionNotFoundError: No connection has this id.
    """
    connection = await work.connections.find_by_id(connection_id)
    if connection is None:
        raise ConnectionNotFoundError(connection_id)

    await work.connections.delete(connection_id)
    event = ConnectionEvent.record(
        id=new_id(),
        connection=connection,
        event_type=EventType.DELETED,
        occurred_at=clock.now(),
        status_before=connection.status.value,
        actor=actor,
    )
    await work.events.append(event)
    logger.info("Deleted connection %s by %s", connection_id, actor)
