"""Encryption cost: AES-256-GCM encrypt plus decrypt of a typical token set.

Each sample times a batch of calls and divides, because one call takes about
a microsecond, close to the resolution and overhead of the timer itself.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.dataset import TYPICAL, make_keyring
from bench.measure import percentile
from linkvault.application.credentials import open_token_set, seal_token_set
from linkvault.domain import ProviderConnection, TokenSet
from linkvault.ports.cipher import connection_context


def typical_token_set(now: datetime) -> TokenSet:
    """Return a token set shaped like most providers' (about 300 bytes of JSON)."""
    return TokenSet(
        access_token="a" * TYPICAL.access_length,
        refresh_token="r" * TYPICAL.refresh_length,
        expires_at=now + timedelta(hours=1),
        refresh_token_expires_at=now + timedelta(days=7),
        scopes=TYPICAL.scopes,
    )


def measure_encryption(samples: int, batch: int) -> dict[str, Any]:
    """Time both round trips; return microseconds per operation and the sizes."""
    now = datetime.now(UTC)
    keyring = make_keyring()
    connection = ProviderConnection.new(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        provider_id=uuid.uuid4(),
        provider_slug="bench",
        now=now,
    )
    tokens = typical_token_set(now)
    plaintext = tokens.to_json()
    context = connection_context(connection.id, connection.user_id)

    def bytes_round_trip() -> None:
        keyring.decrypt(keyring.encrypt(plaintext, context), context)

    def json_round_trip() -> None:
        connection.credentials = seal_token_set(keyring, connection, tokens)
        open_token_set(keyring, connection)

    return {
        "plaintext_bytes": len(plaintext),
        "blob_bytes": len(keyring.encrypt(plaintext, context)),
        "batch": batch,
        "encrypt_decrypt": _per_call(bytes_round_trip, samples, batch),
        "encrypt_decrypt_with_json": _per_call(json_round_trip, samples, batch),
    }


def _per_call(call: Callable[[], None], samples: int, batch: int) -> dict[str, Any]:
    for _ in range(batch):
        call()
    per_call_us = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        per_call_us.append((time.perf_counter_ns() - start) / batch / 1000)
    return {
        "median_us": statistics.median(per_call_us),
        "p95_us": percentile(per_call_us, 0.95),
        "samples": samples,
    }
