"""Rewrap moves every blob onto the primary key, resumably; verify checks it."""

from __future__ import annotations

import uuid

import pytest

from linkvault.adapters.crypto import EncryptionKey, Keyring
from linkvault.adapters.memory import InMemoryEncryptedColumn
from linkvault.application.rewrap import (
    RewrapProgress,
    VerifyProgress,
    rewrap,
    verify,
)
from linkvault.ports.cipher import connection_context, oauth_state_context
from linkvault.ports.repositories import EncryptedValue

ROWS = 23
BATCH = 5


class InterruptedRewrapError(Exception):
    """Stands for a crash or a killed process in the middle of a rewrap."""


@pytest.fixture
def old_ring() -> Keyring:
    keys = [EncryptionKey.generate("old"), EncryptionKey.generate("new")]
    return Keyring(keys, primary="old")


@pytest.fixture
def new_ring(old_ring: Keyring) -> Keyring:
    return old_ring.with_primary("new")


def plaintext_of(index: int) -> bytes:
    return f'{{"refresh_token": "rt-{index}"}}'.encode()


def make_column(
    name: str, keyring: Keyring, rows: int = ROWS
) -> InMemoryEncryptedColumn:
    values: dict[str, EncryptedValue] = {}
    for index in range(rows):
        row_key = f"{index:04d}"
        context = connection_context(uuid.UUID(int=index), uuid.UUID(int=10_000))
        blob = keyring.encrypt(plaintext_of(index), context)
        values[row_key] = EncryptedValue(row_key, blob, context)
    return InMemoryEncryptedColumn(name, values)


def assert_all_on_primary(keyring: Keyring, column: InMemoryEncryptedColumn) -> None:
    for index, value in enumerate(
        sorted(column.rows.values(), key=lambda v: v.row_key)
    ):
        assert keyring.key_id_of(value.blob) == keyring.primary_key_id
        assert keyring.decrypt(value.blob, value.context) == plaintext_of(index)


async def test_rewrap_moves_every_row_to_the_primary_key(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)

    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert_all_on_primary(new_ring, column)
    assert report.primary_key_id == "new"
    (counts,) = report.columns
    assert counts.column == "credentials"
    assert (counts.scanned, counts.rewrapped, counts.already_primary) == (ROWS, ROWS, 0)
    assert (counts.raced, counts.failed) == (0, 0)


async def test_rewrap_keeps_each_blob_bound_to_its_row(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)
    await rewrap(new_ring, [column], batch_size=BATCH)

    first, second = column.rows["0000"], column.rows["0001"]

    with pytest.raises(Exception, match="another row"):
        new_ring.decrypt(first.blob, second.context)


async def test_rewrap_skips_rows_already_on_the_primary_key(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", new_ring)
    before = dict(column.rows)

    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert column.rows == before
    assert report.already_primary == ROWS
    assert report.rewrapped == 0


async def test_rewrap_reports_progress_after_each_batch(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    columns = [
        make_column("credentials", old_ring),
        make_column("verifiers", old_ring, 7),
    ]
    seen: list[RewrapProgress] = []

    report = await rewrap(new_ring, columns, batch_size=BATCH, on_progress=seen.append)

    assert [p.rows_done for p in seen] == [5, 10, 15, 20, 23, 28, 30]
    assert [p.column.column for p in seen] == ["credentials"] * 5 + ["verifiers"] * 2
    assert [p.columns_done for p in seen] == [0] * 5 + [1] * 2
    assert {p.columns_total for p in seen} == {2}
    assert [p.column.rewrapped for p in seen[:5]] == [5, 10, 15, 20, 23]
    assert seen[4].column == report.columns[0]
    assert seen[-1].column == report.columns[1]
    assert report.rewrapped == ROWS + 7


async def test_rewrap_interrupted_half_way_completes_on_a_second_run(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)

    def crash_after_first_batch(progress: RewrapProgress) -> None:
        raise InterruptedRewrapError

    with pytest.raises(InterruptedRewrapError):
        await rewrap(
            new_ring, [column], batch_size=BATCH, on_progress=crash_after_first_batch
        )
    on_new = [v for v in column.rows.values() if new_ring.key_id_of(v.blob) == "new"]
    assert len(on_new) == BATCH

    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert (report.rewrapped, report.already_primary) == (ROWS - BATCH, BATCH)
    assert_all_on_primary(new_ring, column)
    assert (await verify(new_ring, [column])).ok


async def test_rewrap_interrupted_inside_a_batch_completes_on_a_second_run(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)
    swap = column.swap
    calls = 0

    async def failing_swap(row_key: str, old: bytes, new: bytes) -> bool:
        nonlocal calls
        calls += 1
        if calls == 8:
            raise InterruptedRewrapError
        return await swap(row_key, old, new)

    column.swap = failing_swap  # type: ignore[method-assign]
    with pytest.raises(InterruptedRewrapError):
        await rewrap(new_ring, [column], batch_size=BATCH)
    column.swap = swap  # type: ignore[method-assign]

    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert (report.rewrapped, report.already_primary) == (ROWS - 7, 7)
    assert_all_on_primary(new_ring, column)


async def test_rewrap_counts_a_row_changed_by_another_writer_as_raced(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)
    swap = column.swap
    writer_blob = new_ring.encrypt(b"rotated", column.rows["0003"].context)

    async def swap_after_a_writer(row_key: str, old: bytes, new: bytes) -> bool:
        if row_key == "0003":
            current = column.rows[row_key]
            column.rows[row_key] = EncryptedValue(row_key, writer_blob, current.context)
        return await swap(row_key, old, new)

    column.swap = swap_after_a_writer  # type: ignore[method-assign]
    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert (report.raced, report.rewrapped) == (1, ROWS - 1)
    assert column.rows["0003"].blob == writer_blob
    assert (await verify(new_ring, [column])).ok


async def test_rewrap_leaves_undecryptable_rows_and_goes_on(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)
    stranger = Keyring([EncryptionKey.generate("lost")], primary="lost")
    lost = column.rows["0002"]
    lost_blob = stranger.encrypt(b"x", lost.context)
    column.rows["0002"] = EncryptedValue("0002", lost_blob, lost.context)

    report = await rewrap(new_ring, [column], batch_size=BATCH)

    assert (report.failed, report.rewrapped) == (1, ROWS - 1)
    assert report.columns[0].failed_rows == ("0002",)
    assert column.rows["0002"].blob == lost_blob


async def test_rewrap_does_not_change_contexts_or_row_keys(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)
    before = {k: v.context for k, v in column.rows.items()}

    await rewrap(new_ring, [column], batch_size=BATCH)

    assert {k: v.context for k, v in column.rows.items()} == before


async def test_rewrap_of_an_empty_column_reports_zero(new_ring: Keyring) -> None:
    report = await rewrap(new_ring, [InMemoryEncryptedColumn("empty", {})])

    assert report.scanned == 0
    assert report.columns[0].column == "empty"


@pytest.mark.parametrize("batch_size", [0, -1])
async def test_rewrap_rejects_a_batch_size_below_one(
    new_ring: Keyring, batch_size: int
) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await rewrap(new_ring, [], batch_size=batch_size)


async def test_verify_counts_rows_left_on_other_keys(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", old_ring)

    def stop(progress: RewrapProgress) -> None:
        raise InterruptedRewrapError

    with pytest.raises(InterruptedRewrapError):
        await rewrap(new_ring, [column], batch_size=BATCH, on_progress=stop)

    report = await verify(new_ring, [column], batch_size=BATCH)

    (counts,) = report.columns
    assert (counts.scanned, counts.primary, counts.non_primary) == (ROWS, 5, ROWS - 5)
    assert counts.undecryptable == 0
    assert counts.key_ids == {"new": 5, "old": ROWS - 5}
    assert not report.ok


async def test_verify_counts_undecryptable_rows(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    column = make_column("credentials", new_ring)
    tampered = column.rows["0001"]
    flipped = tampered.blob[:-1] + bytes([tampered.blob[-1] ^ 1])
    column.rows["0001"] = EncryptedValue("0001", flipped, tampered.context)
    moved = column.rows["0002"]
    other_context = oauth_state_context(uuid.UUID(int=99))
    column.rows["0002"] = EncryptedValue("0002", moved.blob, other_context)
    column.rows["0003"] = EncryptedValue("0003", b"\x07garbage", moved.context)

    report = await verify(new_ring, [column])

    assert report.undecryptable == 3
    assert report.columns[0].undecryptable_rows == ("0001", "0002", "0003")
    assert report.columns[0].primary == ROWS - 3
    assert report.non_primary == 0
    assert not report.ok


async def test_verify_after_full_rewrap_is_ok(
    old_ring: Keyring, new_ring: Keyring
) -> None:
    columns = [
        make_column("credentials", old_ring),
        make_column("secrets", old_ring, 3),
    ]
    progress: list[VerifyProgress] = []

    await rewrap(new_ring, columns, batch_size=BATCH)
    report = await verify(
        new_ring, columns, batch_size=BATCH, on_progress=progress.append
    )

    assert report.ok
    assert report.scanned == ROWS + 3
    assert [c.key_ids for c in report.columns] == [{"new": ROWS}, {"new": 3}]
    assert progress[-1].rows_done == ROWS + 3
