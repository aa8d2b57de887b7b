"""Identifier factory: time-ordered UUIDv7 (RFC 9562) as standard `uuid.UUID`."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    """Return a fresh UUIDv7; ids sort by creation time, which keeps indexes compact."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
