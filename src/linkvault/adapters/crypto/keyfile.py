"""Loading the keyring from configuration, and writing key files.

Key format (the one format, for files and for the environment)::

    # linkvault keyring: one key per line, KEY_ID:BASE64_OF_32_BYTES
    main-2024:<44 characters: standard base64 of 32 random bytes>
    main-2025:<44 characters: standard base64 of 32 random bytes>
    primary: main-2025

- A key line is a key id (1-64 characters of letters, digits, '.', '_', '-';
  not `primary`), a colon, and 32 random bytes in standard base64 with padding.
- `primary: KEY_ID` names the key that encrypts. It is required when more than
  one key is loaded; a single key is primary on its own.
- Blank lines and lines starting with `#` are ignored; a comment takes a whole
  line. Whitespace around ids, values and lines is ignored.

Sources, first match wins:

1. the `key_file` argument (the CLI's `--key-file`);
2. `LINKVAULT_KEYS`: the same lines, separated by newlines or `;`;
3. `LINKVAULT_KEY_FILE`: the path of a key file.

Setting both environment variables is an error rather than a silent choice. There
is never a default key: with no source, loading fails with a message on how to make one.
No message of this module repeats a key's base64 or a line that may hold it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from linkvault.adapters.crypto.keyring import (
    KEY_SIZE,
    EncryptionKey,
    Keyring,
    decode_key,
    is_valid_key_id,
    key_file_line,
)
from linkvault.domain.errors import KeyConfigurationError

logger = logging.getLogger(__name__)

KEYS_ENV = "LINKVAULT_KEYS"
KEY_FILE_ENV = "LINKVAULT_KEY_FILE"
KEY_FILE_MODE = 0o600

HOW_TO_CREATE = (
    "Create a key with `linkvault init` or `linkvault keys add`, or write a key "
    "file of mode 0600 yourself: one line per key, `KEY_ID:BASE64_OF_32_BYTES` "
    '(for the bytes, run `python -c "import base64, os; '
    'print(base64.b64encode(os.urandom(32)).decode())"`), plus a line '
    "`primary: KEY_ID` when there are several keys. Point LINKVAULT_KEY_FILE at "
    "the file, or put the same lines in LINKVAULT_KEYS separated by `;`."
)

_PRIMARY = "primary"


@dataclass(frozen=True, slots=True)
class KeySet:
    """Keys and the primary id as read from a key source, before use."""

    keys: tuple[EncryptionKey, ...]
    primary: str

    def keyring(self) -> Keyring:
        return Keyring(self.keys, primary=self.primary)


def load_keyring(
    *, key_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Keyring:
    """Load the keyring from `key_file`, `LINKVAULT_KEYS` or `LINKVAULT_KEY_FILE`.

    Args:
        key_file: A key file that takes precedence over the environment.
        environ: The environment to read; `os.environ` when None.

    Raises:
        KeyConfigurationError: No key source is configured, the source cannot be
            read, or its content is malformed. The message states how to fix it.
    """
    env = os.environ if environ is None else environ
    if key_file is not None:
        return read_key_file(key_file).keyring()

    inline = env.get(KEYS_ENV, "").strip()
    path = env.get(KEY_FILE_ENV, "").strip()
    if inline and path:
        raise KeyConfigurationError(
            f"Both {KEYS_ENV} and {KEY_FILE_ENV} are set; set only one, so that "
            "it is clear which keys encrypt."
        )
    if inline:
        logger.debug("Loading the keyring from %s", KEYS_ENV)
        entries = inline.replace(";", "\n").splitlines()
        return parse_keys(entries, source=KEYS_ENV, unit="entry").keyring()
    if path:
        return read_key_file(Path(path)).keyring()

    raise KeyConfigurationError(
        f"No encryption key is configured: neither {KEYS_ENV} nor {KEY_FILE_ENV} "
        f"is set. {HOW_TO_CREATE}"
    )


def read_key_file(path: Path) -> KeySet:
    """Read and validate a key file; warn if its mode lets others read it.

    Raises:
        KeyConfigurationError: The file is missing, unreadable or malformed.
    """
    path = Path(path)
    logger.debug("Loading the keyring from %s", path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyConfigurationError(
            f"Key file {path} does not exist. {HOW_TO_CREATE}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigurationError(
            f"Key file {path} cannot be read ({type(exc).__name__}); check that it "
            f"is a UTF-8 text file that this user may read. {HOW_TO_CREATE}"
        ) from exc

    _warn_if_exposed(path)
    return parse_keys(text.splitlines(), source=str(path), unit="line")


def parse_keys(lines: Sequence[str], *, source: str, unit: str = "line") -> KeySet:
    """Parse key lines into a `KeySet`.

    Args:
        lines: The lines of a key file or the entries of `LINKVAULT_KEYS`.
        source: Where the lines came from, for messages.
        unit: What one element of `lines` is called in messages.

    Raises:
        KeyConfigurationError: A malformed line, a key that is not 32 bytes, a
            duplicate id, no key at all, or a missing or unknown primary.
    """
    keys: dict[str, EncryptionKey] = {}
    primary: str | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        where = f"{unit} {number} of {source}"
        name, colon, value = (part.strip() for part in line.partition(":"))
        if not colon:
            raise _malformed(
                f"{where} is not `KEY_ID:BASE64_OF_32_BYTES` or `primary: KEY_ID`"
            )
        if name.lower() == _PRIMARY:
            primary = _parse_primary(value, primary, where)
            continue

        key = _parse_key(name, value, where)
        if key.key_id in keys:
            raise _malformed(
                f"{where} defines key {key.key_id!r} a second time; every key "
                "needs its own id (keep the original key, it decrypts old rows)"
            )
        keys[key.key_id] = key

    return KeySet(tuple(keys.values()), _choose_primary(keys, primary, source))


def write_key_file(
    path: Path,
    keys: Sequence[EncryptionKey],
    primary: str,
    *,
    overwrite: bool = False,
) -> None:
    """Write a key file atomically, readable and writable by its owner only.

    The content goes to a temporary file of mode 0600 in the same directory,
    is flushed to disk, then renamed over `path`, so a reader sees either the
    old file or the new one, never half of it. Comments of an existing file are
    not kept. Missing parent directories are created with mode 0700.

    Args:
        path: Where the key file goes.
        keys: Every key to keep, old ones included: dropping a key makes the
            rows still encrypted under it unreadable.
        primary: Id of the key that encrypts.
        overwrite: Replace an existing file; otherwise an existing file is an
            error, so that `init` never destroys keys.

    Raises:
        KeyConfigurationError: Invalid keys, an existing file without
            `overwrite`, or the file cannot be written.
    """
    path = Path(path)
    Keyring(keys, primary=primary)  # validates ids, duplicates and the primary
    content = _render(keys, primary)

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):  # mkstemp already made it 0600 on POSIX
                os.fchmod(handle.fileno(), KEY_FILE_MODE)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        _install(Path(temporary), path, overwrite=overwrite)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)

    _sync_directory(path.parent)
    logger.info("Wrote key file %s with keys %s", path, [k.key_id for k in keys])


def add_key_to_file(
    path: Path, key_id: str, *, make_primary: bool = False
) -> EncryptionKey:
    """Generate a key under `key_id` and add it to a key file.

    A missing file is created with the new key as its only, primary key.
    Otherwise the existing keys and primary stay, unless `make_primary`.

    Returns:
        The new key (its repr shows the id only).

    Raises:
        KeyConfigurationError: The id is invalid or already used, or the file
            cannot be read or written.
    """
    path = Path(path)
    key = EncryptionKey.generate(key_id)
    if not path.exists():
        write_key_file(path, [key], key.key_id)
        return key

    current = read_key_file(path)
    if key_id in {k.key_id for k in current.keys}:
        raise KeyConfigurationError(
            f"Key file {path} already has a key {key_id!r}; choose a new id, "
            "for example with the date in it."
        )
    primary = key.key_id if make_primary else current.primary
    write_key_file(path, [*current.keys, key], primary, overwrite=True)

    return key


def set_primary_in_file(path: Path, key_id: str) -> None:
    """Make `key_id`, already in the key file, its primary key.

    Raises:
        KeyConfigurationError: The file does not hold `key_id`, or cannot be
            read or written.
    """
    current = read_key_file(Path(path))
    _require_present(current, key_id, path)
    write_key_file(Path(path), current.keys, key_id, overwrite=True)


def remove_key_from_file(path: Path, key_id: str) -> None:
    """Retire `key_id` from a key file; the primary key cannot be removed.

    Run rewrap and verify first: rows still encrypted under a removed key can
    no longer be decrypted.

    Raises:
        KeyConfigurationError: The key is absent or primary, or the file cannot
            be read or written.
    """
    current = read_key_file(Path(path))
    _require_present(current, key_id, path)
    if key_id == current.primary:
        raise KeyConfigurationError(
            f"Key {key_id!r} is the primary key of {path}; make another key "
            "primary, rewrap and verify before retiring it."
        )
    kept = [k for k in current.keys if k.key_id != key_id]
    write_key_file(Path(path), kept, current.primary, overwrite=True)


def _parse_primary(value: str, earlier: str | None, where: str) -> str:
    if earlier is not None:
        raise _malformed(f"{where} names the primary key a second time")
    if not is_valid_key_id(value):
        raise _malformed(
            f"{where} has no valid key id after `primary:` (1-64 characters of "
            "letters, digits, '.', '_' or '-')"
        )

    return value


def _parse_key(name: str, value: str, where: str) -> EncryptionKey:
    if not is_valid_key_id(name):
        raise _malformed(
            f"{where} does not start with a valid key id (1-64 characters of "
            "letters, digits, '.', '_' or '-', not 'primary')"
        )
    if not value:
        raise _malformed(f"{where} has no key after the colon")
    try:
        material = decode_key(value)
    except ValueError:
        raise _malformed(
            f"{where}: the key after the colon is not valid standard base64"
        ) from None
    if len(material) != KEY_SIZE:
        raise _malformed(
            f"{where}: the key decodes to {len(material)} bytes, but an AES-256 "
            f"key is {KEY_SIZE} bytes"
        )

    return EncryptionKey(name, material)


def _choose_primary(
    keys: Mapping[str, EncryptionKey], primary: str | None, source: str
) -> str:
    if not keys:
        raise KeyConfigurationError(f"{source} contains no key. {HOW_TO_CREATE}")
    if primary is None:
        if len(keys) > 1:
            raise _malformed(
                f"{source} contains {len(keys)} keys ({', '.join(keys)}) but no "
                "`primary: KEY_ID` line; add one naming the key that encrypts"
            )
        return next(iter(keys))
    if primary not in keys:
        raise _malformed(
            f"{source} names {primary!r} as primary, but contains no key with that "
            f"id (it holds {', '.join(keys)}); add the key or fix the primary line"
        )

    return primary


def _render(keys: Sequence[EncryptionKey], primary: str) -> str:
    lines = [
        "# linkvault keyring: one key per line, KEY_ID:BASE64_OF_32_BYTES.",
        "# Keep every key that still encrypts stored rows; retire a key only",
        "# after rewrap and verify. This file must stay mode 0600.",
        *(key_file_line(key) for key in keys),
        f"{_PRIMARY}: {primary}",
    ]

    return "\n".join(lines) + "\n"


def _install(temporary: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    # A hard link creates `path` only if it does not exist, atomically.
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise KeyConfigurationError(
            f"Key file {path} already exists; it may hold the only copy of keys "
            "that decrypt stored credentials. Add a key to it with "
            "`linkvault keys add` instead, or move it away first."
        ) from None


def _sync_directory(directory: Path) -> None:
    # Makes the rename durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _warn_if_exposed(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "Key file %s has mode %04o, so users other than its owner may read "
            "it; run `chmod 600 %s`.",
            path,
            mode,
            path,
        )


def _require_present(current: KeySet, key_id: str, path: Path) -> None:
    if key_id not in {k.key_id for k in current.keys}:
        raise KeyConfigurationError(
            f"Key file {path} has no key {key_id!r} (it contains "
            f"{', '.join(k.key_id for k in current.keys)}); add it first with "
            "`linkvault keys add`."
        )


def _malformed(problem: str) -> KeyConfigurationError:
    return KeyConfigurationError(f"{problem}. {HOW_TO_CREATE}")


def _unwritable(path: Path, exc: OSError) -> KeyConfigurationError:
    return KeyConfigurationError(
        f"Key file {path} could not be written ({exc.strerror or exc}); check that "
        "its directory exists and this user may write to it."
    )
