"""Rewrap: move every encrypted blob onto the keyring's primary key, then verify.

Key rotation runs in this order:

1. add the new key to every process's keyring (all of them can now read it);
2. make it primary everywhere (new blobs are written under it);
3. `rewrap` (old blobs are re-encrypted under it, the old key still decrypts);
4. `verify` (no row is left under another key, every row decrypts);
5. retire the old key.

Rewrap walks each column in row-key order, in batches. A blob already under the
primary key is left alone, so a run that was interrupted, by an exception or a
killed process, is simply started again and finishes the rest. Each blob is
replaced by compare-and-swap: if the row changed since it was read (a worker
saved fresh credentials meanwhile), the swap is skipped and counted as raced;
that writer encrypted under the primary key already, and `verify` reports it if not.

Rewrap never bumps a connection's `version`, and an `EncryptedColumn.swap`
implementation must change nothing but the blob. The plaintext is unchanged, so
there is nothing for optimistic concurrency to protect; bumping the version
would instead make a worker's concurrent save of a freshly rotated refresh
token fail as stale, and a rotated refresh token that is not stored is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from linkvault.domain.errors import DecryptionError
from linkvault.ports.cipher import Cipher
from linkvault.ports.repositories import EncryptedColumn, EncryptedValue

logger = logging.getLogger(__name__)

# How many row keys of failed rows a report keeps, so that a million rows under
# a missing key do not make a million-entry report.
MAX_SAMPLE_ROWS = 20


@dataclass(frozen=True, slots=True)
class ColumnRewrap:
    """Result of rewrapping one column.

    Attributes:
        column: The column's name.
        scanned: Rows read.
        rewrapped: Rows re-encrypted under the primary key and swapped in.
        already_primary: Rows that were under the primary key already.
        raced: Rows changed by another writer between read and swap; left as
            that writer stored them.
        failed: Rows that did not decrypt (unknown key, altered, wrong context);
            left unchanged.
        failed_rows: Row keys of the first failed rows.
    """

    column: str
    scanned: int = 0
    rewrapped: int = 0
    already_primary: int = 0
    raced: int = 0
    failed: int = 0
    failed_rows: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    """Rewrap's state after a batch, for a progress display.

    Attributes:
        column: Counts so far of the column being walked.
        columns_done: Columns finished before this one.
        columns_total: Columns to walk in all.
        rows_done: Rows scanned so far across every column.
    """

    column: ColumnRewrap
    columns_done: int
    columns_total: int
    rows_done: int


@dataclass(frozen=True, slots=True)
class RewrapReport:
    """Counts per column of one rewrap run."""

    primary_key_id: str
    columns: tuple[ColumnRewrap, ...]

    @property
    def scanned(self) -> int:
        return sum(c.scanned for c in self.columns)

    @property
    def rewrapped(self) -> int:
        return sum(c.rewrapped for c in self.columns)

    @property
    def already_primary(self) -> int:
        return sum(c.already_primary for c in self.columns)

    @property
    def raced(self) -> int:
        return sum(c.raced for c in self.columns)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.columns)


@dataclass(frozen=True, slots=True)
class ColumnVerification:
    """What verify found in one column.

    Attributes:
        column: The column's name.
        scanned: Rows read.
        primary: Rows that decrypt and are under the primary key.
        non_primary: Rows that decrypt but are under another key.
        undecryptable: Rows that do not decrypt with the loaded keys.
        key_ids: Rows per key id named in the blob headers, undecryptable rows
            included where the header is readable; shows which old keys are
            still in use.
        undecryptable_rows: Row keys of the first undecryptable rows.
    """

    column: str
    scanned: int = 0
    primary: int = 0
    non_primary: int = 0
    undecryptable: int = 0
    key_ids: Mapping[str, int] = field(default_factory=dict)
    undecryptable_rows: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.non_primary == 0 and self.undecryptable == 0


@dataclass(frozen=True, slots=True)
class VerifyProgress:
    """Verify's state after a batch; the fields mean what `RewrapProgress`'s do."""

    column: ColumnVerification
    columns_done: int
    columns_total: int
    rows_done: int


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Counts per column of one verify run; `ok` means the old keys can go."""

    primary_key_id: str
    columns: tuple[ColumnVerification, ...]

    @property
    def scanned(self) -> int:
        return sum(c.scanned for c in self.columns)

    @property
    def non_primary(self) -> int:
        return sum(c.non_primary for c in self.columns)

    @property
    def undecryptable(self) -> int:
        return sum(c.undecryptable for c in self.columns)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.columns)


async def rewrap(
    cipher: Cipher,
    columns: Sequence[EncryptedColumn],
    *,
    batch_size: int = 500,
    on_progress: Callable[[RewrapProgress], None] | None = None,
) -> RewrapReport:
    """Re-encrypt every blob of `columns` that is not under the primary key.

    Resumable: run it again after an interruption and it finishes the rest.
    Rows that fail to decrypt are counted, logged and left unchanged.

    Args:
        cipher: The keyring; its primary key is the target.
        columns: Every encrypted column to walk, in order.
        batch_size: Rows read per `scan`.
        on_progress: Called after each batch; an exception it raises stops the
            run (what was swapped so far stays swapped).

    Raises:
        ValueError: `batch_size` is below 1.
    """
    _check_batch_size(batch_size)
    primary = cipher.primary_key_id
    logger.info("Rewrap to key %s started on %d columns", primary, len(columns))

    reports: list[ColumnRewrap] = []
    rows_done = 0
    for index, column in enumerate(columns):
        tally = _RewrapTally(column.name)
        after: str | None = None
        while batch := await column.scan(after, batch_size):
            for value in batch:
                await _rewrap_one(cipher, primary, column, value, tally)
            rows_done += len(batch)
            after = batch[-1].row_key
            if on_progress is not None:
                on_progress(
                    RewrapProgress(tally.snapshot(), index, len(columns), rows_done)
                )

        report = tally.snapshot()
        reports.append(report)
        logger.log(
            logging.WARNING if report.failed else logging.INFO,
            "Rewrap of %s finished: %d scanned, %d rewrapped, %d already primary, "
            "%d raced, %d failed",
            report.column,
            report.scanned,
            report.rewrapped,
            report.already_primary,
            report.raced,
            report.failed,
        )

    return RewrapReport(primary, tuple(reports))


async def verify(
    cipher: Cipher,
    columns: Sequence[EncryptedColumn],
    *,
    batch_size: int = 500,
    on_progress: Callable[[VerifyProgress], None] | None = None,
) -> VerifyReport:
    """Check that every blob of `columns` decrypts and is under the primary key.

    Changes nothing. Run it after `rewrap` and before retiring a key: only a
    report whose `ok` is true means no row needs the old key any more.

    Raises:
        ValueError: `batch_size` is below 1.
    """
    _check_batch_size(batch_size)
    primary = cipher.primary_key_id

    reports: list[ColumnVerification] = []
    rows_done = 0
    for index, column in enumerate(columns):
        tally = _VerifyTally(column.name)
        after: str | None = None
        while batch := await column.scan(after, batch_size):
            for value in batch:
                tally.check(cipher, primary, value)
            rows_done += len(batch)
            after = batch[-1].row_key
            if on_progress is not None:
                on_progress(
                    VerifyProgress(tally.snapshot(), index, len(columns), rows_done)
                )
        reports.append(tally.snapshot())

    result = VerifyReport(primary, tuple(reports))
    logger.info(
        "Verify against key %s: %d scanned, %d not under it, %d undecryptable",
        primary,
        result.scanned,
        result.non_primary,
        result.undecryptable,
    )

    return result


async def _rewrap_one(
    cipher: Cipher,
    primary: str,
    column: EncryptedColumn,
    value: EncryptedValue,
    tally: _RewrapTally,
) -> None:
    tally.scanned += 1
    try:
        if cipher.key_id_of(value.blob) == primary:
            tally.already_primary += 1
            return
        plaintext = cipher.decrypt(value.blob, value.context)
    except DecryptionError as exc:
        tally.fail(value.row_key)
        level = logging.WARNING if tally.failed <= MAX_SAMPLE_ROWS else logging.DEBUG
        logger.log(
            level,
            "Rewrap left row %s of %s unchanged: %s",
            value.row_key,
            column.name,
            exc,
        )
        return

    rewrapped = cipher.encrypt(plaintext, value.context)
    if await column.swap(value.row_key, value.blob, rewrapped):
        tally.rewrapped += 1
    else:
        tally.raced += 1
        logger.info(
            "Row %s of %s changed during rewrap; left as its writer stored it",
            value.row_key,
            column.name,
        )


class _RewrapTally:
    def __init__(self, column: str) -> None:
        self.column = column
        self.scanned = self.rewrapped = self.already_primary = 0
        self.raced = self.failed = 0
        self.failed_rows: list[str] = []

    def fail(self, row_key: str) -> None:
        self.failed += 1
        if len(self.failed_rows) < MAX_SAMPLE_ROWS:
            self.failed_rows.append(row_key)

    def snapshot(self) -> ColumnRewrap:
        return ColumnRewrap(
            column=self.column,
            scanned=self.scanned,
            rewrapped=self.rewrapped,
            already_primary=self.already_primary,
            raced=self.raced,
            failed=self.failed,
            failed_rows=tuple(self.failed_rows),
        )


class _VerifyTally:
    def __init__(self, column: str) -> None:
        self.column = column
        self.scanned = self.primary = self.non_primary = self.undecryptable = 0
        self.key_ids: dict[str, int] = {}
        self.undecryptable_rows: list[str] = []

    def check(self, cipher: Cipher, primary: str, value: EncryptedValue) -> None:
        self.scanned += 1
        try:
            key_id = cipher.key_id_of(value.blob)
        except DecryptionError:
            self._undecryptable(value.row_key)
            return
        self.key_ids[key_id] = self.key_ids.get(key_id, 0) + 1

        try:
            cipher.decrypt(value.blob, value.context)
        except DecryptionError:
            self._undecryptable(value.row_key)
            return
        if key_id == primary:
            self.primary += 1
        else:
            self.non_primary += 1

    def snapshot(self) -> ColumnVerification:
        return ColumnVerification(
            column=self.column,
            scanned=self.scanned,
            primary=self.primary,
            non_primary=self.non_primary,
            undecryptable=self.undecryptable,
            key_ids=dict(self.key_ids),
            undecryptable_rows=tuple(self.undecryptable_rows),
        )

    def _undecryptable(self, row_key: str) -> None:
        self.undecryptable += 1
        if len(self.undecryptable_rows) < MAX_SAMPLE_ROWS:
            self.undecryptable_rows.append(row_key)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
