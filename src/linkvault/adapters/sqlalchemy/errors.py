"""Persistence errors that are also SQLAlchemy errors, for callers of either."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.exc import NoResultFound

from linkvault.domain.errors import ConnectionNotFoundError


class SqlConnectionNotFoundError(ConnectionNotFoundError, NoResultFound):
    """A missing connection, catchable as the domain error or as `NoResultFound`."""

    def __init__(self, connection_id: UUID) -> None:
        ConnectionNotFoundError.__init__(self, connection_id)
