"""The AES-256-GCM keyring adapter of the cipher port, and key loading.

`Keyring` encrypts under its primary key and decrypts under any loaded key;
`load_keyring` builds one from a key file or the environment (the key format is
described in `linkvault.adapters.crypto.keyfile`).
"""

from linkvault.adapters.crypto.keyfile import (
    HOW_TO_CREATE,
    KEY_FILE_ENV,
    KEYS_ENV,
    KeySet,
    add_key_to_file,
    load_keyring,
    parse_keys,
    read_key_file,
    remove_key_from_file,
    set_primary_in_file,
    write_key_file,
)
from linkvault.adapters.crypto.keyring import (
    FORMAT_VERSION,
    EncryptionKey,
    Keyring,
    generate_key,
    is_valid_key_id,
    key_file_line,
)

__all__ = [
    "FORMAT_VERSION",
    "HOW_TO_CREATE",
    "KEYS_ENV",
    "KEY_FILE_ENV",
    "EncryptionKey",
    "KeySet",
    "Keyring",
    "add_key_to_file",
    "generate_key",
    "is_valid_key_id",
    "key_file_line",
    "load_keyring",
    "parse_keys",
    "read_key_file",
    "remove_key_from_file",
    "set_primary_in_file",
    "write_key_file",
]
