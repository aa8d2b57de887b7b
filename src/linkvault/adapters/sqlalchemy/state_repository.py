"""Pending authorisations in `oauth_states`, consumed exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from linkvault.adapters.sqlalchemy.tables import oauth_states
from linkvault.domain.authorization import AuthorizationState

_T = oauth_states


class SqlAlchemyStateRepository:
    """Stores `AuthorizationState`s; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, state: AuthorizationState) -> None:
        await self._session.execute(sa.insert(_T).values(**_to_row(state)))

    async def find_by_hash(self, state_hash: str) -> AuthorizationState | None:
        statement = sa.select(_T).where(_T.c.state_hash == state_hash)
        row = (await self._session.execute(statement)).mappings().one_or_none()
        return None if row is None else AuthorizationState(**dict(row))

    async def consume(self, state: AuthorizationState, now: datetime) -> bool:
        """Mark the state used; False when another request consumed it first.

        The conditional UPDATE is what makes a state single-use even when two
        callbacks with the same state arrive together.
        """
        statement = (
            sa.update(_T)
            .where(_T.c.id == state.id, _T.c.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        result = await self._session.execute(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        state.consumed_at = now
        return True

    async def delete_expired(self, now: datetime) -> int:
        """Delete states that expired before `now`; returns how many."""
        statement = sa.delete(_T).where(_T.c.expires_at < now)
        result = await self._session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]


def _to_row(state: AuthorizationState) -> dict[str, Any]:
    return {
        "id": state.id,
        "state_hash": state.state_hash,
        "connection_id": state.connection_id,
        "user_id": state.user_id,
        "provider_id": state.provider_id,
        "redirect_uri": state.redirect_uri,
        "code_verifier_encrypted": state.code_verifier_encrypted,
        "created_at": state.created_at,
        "expires_at": state.expires_at,
        "consumed_at": state.consumed_at,
    }
