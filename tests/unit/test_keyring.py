"""The AES-256-GCM keyring: blob format, tamper detection, key ids, secrecy."""

from __future__ import annotations

import base64
import uuid

import pytest

from linkvault.adapters.crypto import (
    EncryptionKey,
    Keyring,
    generate_key,
    is_valid_key_id,
    key_file_line,
)
from linkvault.adapters.crypto.keyring import NONCE_SIZE, TAG_SIZE
from linkvault.domain.errors import (
    CredentialsError,
    DecryptionError,
    KeyConfigurationError,
)
from linkvault.ports.cipher import Cipher, connection_context, provider_context

PLAINTEXT = b'{"access_token": "at-secret", "refresh_token": "rt-secret"}'
CONTEXT = connection_context(uuid.UUID(int=1), uuid.UUID(int=2))
OTHER_CONTEXT = connection_context(uuid.UUID(int=3), uuid.UUID(int=2))


@pytest.fixture
def old_key() -> EncryptionKey:
    return EncryptionKey.generate("old-2024")


@pytest.fixture
def new_key() -> EncryptionKey:
    return EncryptionKey.generate("new-2025")


@pytest.fixture
def keyring(old_key: EncryptionKey) -> Keyring:
    return Keyring([old_key], primary="old-2024")


def secret_forms(material: bytes) -> list[str]:
    """Every way key bytes could leak into text."""
    return [
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode(),
        material.hex(),
        material.hex().upper(),
        repr(material),
        str(material),
        material.decode("latin-1"),
    ]


def blob_regions(key_id: str, blob: bytes) -> dict[str, range]:
    nonce_start = 2 + len(key_id)
    tag_start = len(blob) - TAG_SIZE
    return {
        "format version": range(0, 1),
        "key id length": range(1, 2),
        "key id": range(2, nonce_start),
        "nonce": range(nonce_start, nonce_start + NONCE_SIZE),
        "ciphertext": range(nonce_start + NONCE_SIZE, tag_start),
        "tag": range(tag_start, len(blob)),
    }


def test_keyring_satisfies_the_cipher_port(keyring: Keyring) -> None:
    cipher: Cipher = keyring

    assert cipher.primary_key_id == "old-2024"


def test_round_trip_returns_the_plaintext(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    assert keyring.decrypt(blob, CONTEXT) == PLAINTEXT


def test_round_trip_of_empty_plaintext(keyring: Keyring) -> None:
    assert keyring.decrypt(keyring.encrypt(b"", CONTEXT), CONTEXT) == b""


def test_blob_follows_the_documented_layout(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    assert blob[0] == 1
    assert blob[1] == len("old-2024")
    assert blob[2:10] == b"old-2024"
    assert len(blob) == 2 + 8 + NONCE_SIZE + len(PLAINTEXT) + TAG_SIZE
    assert PLAINTEXT not in blob


def test_same_plaintext_encrypts_to_different_blobs(keyring: Keyring) -> None:
    first = keyring.encrypt(PLAINTEXT, CONTEXT)
    second = keyring.encrypt(PLAINTEXT, CONTEXT)

    assert first != second
    assert first[10 : 10 + NONCE_SIZE] != second[10 : 10 + NONCE_SIZE]


@pytest.mark.parametrize(
    "region",
    ["format version", "key id length", "key id", "nonce", "ciphertext", "tag"],
)
def test_flipping_any_byte_of_a_region_fails_to_decrypt(
    keyring: Keyring, region: str
) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    for index in blob_regions("old-2024", blob)[region]:
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[index] ^= bit
            with pytest.raises(DecryptionError):
                keyring.decrypt(bytes(tampered), CONTEXT)


def test_every_truncation_fails_to_decrypt(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    for length in range(len(blob)):
        with pytest.raises(DecryptionError):
            keyring.decrypt(blob[:length], CONTEXT)


def test_truncated_blob_message_says_truncated(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError, match="truncated") as caught:
        keyring.decrypt(blob[: 2 + 8 + NONCE_SIZE], CONTEXT)

    assert "old-2024" in str(caught.value)


def test_appended_bytes_fail_to_decrypt(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError):
        keyring.decrypt(blob + b"\x00", CONTEXT)


def test_blob_of_another_connection_fails_to_decrypt(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError, match="old-2024") as caught:
        keyring.decrypt(blob, OTHER_CONTEXT)

    assert "another row" in str(caught.value)


def test_blob_of_another_kind_of_row_fails_to_decrypt(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError):
        keyring.decrypt(blob, provider_context(uuid.UUID(int=1)))


def test_same_key_id_with_other_bytes_fails_to_decrypt(keyring: Keyring) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)
    impostor = Keyring([EncryptionKey.generate("old-2024")], primary="old-2024")

    with pytest.raises(DecryptionError, match="load the original key 'old-2024'"):
        impostor.decrypt(blob, CONTEXT)


def test_unknown_key_id_names_the_key_and_what_to_do(
    keyring: Keyring, new_key: EncryptionKey
) -> None:
    blob = Keyring([new_key], primary="new-2025").encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError) as caught:
        keyring.decrypt(blob, CONTEXT)

    message = str(caught.value)
    assert "'new-2025'" in message
    assert "load key 'new-2025' into the keyring" in message


def test_unknown_format_version_is_named(keyring: Keyring) -> None:
    blob = bytearray(keyring.encrypt(PLAINTEXT, CONTEXT))
    blob[0] = 2

    with pytest.raises(DecryptionError, match="format version 2"):
        keyring.decrypt(bytes(blob), CONTEXT)


def test_decryption_errors_reveal_neither_plaintext_nor_key(
    keyring: Keyring, old_key: EncryptionKey
) -> None:
    blob = keyring.encrypt(PLAINTEXT, CONTEXT)

    with pytest.raises(DecryptionError) as caught:
        keyring.decrypt(blob, OTHER_CONTEXT)

    message = str(caught.value)
    assert "secret" not in message
    for form in secret_forms(old_key.material):
        assert form not in message


def test_old_blobs_decrypt_after_the_primary_changes(
    old_key: EncryptionKey, new_key: EncryptionKey
) -> None:
    before = Keyring([old_key, new_key], primary="old-2024")
    old_blob = before.encrypt(PLAINTEXT, CONTEXT)

    after = before.with_primary("new-2025")
    new_blob = after.encrypt(PLAINTEXT, CONTEXT)

    assert after.primary_key_id == "new-2025"
    assert after.decrypt(old_blob, CONTEXT) == PLAINTEXT
    assert after.key_id_of(old_blob) == "old-2024"
    assert after.key_id_of(new_blob) == "new-2025"
    assert before.decrypt(new_blob, CONTEXT) == PLAINTEXT


def test_key_id_of_reads_the_header_without_the_key(
    keyring: Keyring, new_key: EncryptionKey
) -> None:
    foreign = Keyring([new_key], primary="new-2025").encrypt(PLAINTEXT, CONTEXT)

    assert keyring.key_id_of(keyring.encrypt(PLAINTEXT, CONTEXT)) == "old-2024"
    assert keyring.key_id_of(foreign) == "new-2025"


@pytest.mark.parametrize(
    "blob", [b"", b"\x01", b"\x02\x01k" + bytes(28), b"\x01\x00" + bytes(28)]
)
def test_key_id_of_rejects_malformed_headers(keyring: Keyring, blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        keyring.key_id_of(blob)


def test_key_id_of_rejects_a_header_with_an_invalid_key_id(keyring: Keyring) -> None:
    blob = b"\x01\x03a b" + bytes(NONCE_SIZE + TAG_SIZE)

    with pytest.raises(DecryptionError, match="not a valid key id"):
        keyring.key_id_of(blob)


@pytest.mark.parametrize("render", [repr, str])
def test_keyring_and_key_text_show_ids_only(
    old_key: EncryptionKey, new_key: EncryptionKey, render: object
) -> None:
    assert callable(render)
    keyring = Keyring([old_key, new_key], primary="new-2025")

    for text in (render(keyring), render(old_key), render(new_key)):
        for key in (old_key, new_key):
            for form in secret_forms(key.material):
                assert form not in text
    assert "old-2024" in render(keyring)
    assert "new-2025" in render(keyring)
    assert "old-2024" in render(old_key)


def test_key_bytes_are_absent_from_a_container_repr(old_key: EncryptionKey) -> None:
    text = repr({"keys": [old_key]})

    for form in secret_forms(old_key.material):
        assert form not in text


@pytest.mark.parametrize(
    "key_id", ["", "a" * 65, "has space", "colon:id", "ünïcode", "primary", "PRIMARY"]
)
def test_invalid_key_ids_are_rejected(key_id: str) -> None:
    assert not is_valid_key_id(key_id)
    with pytest.raises(KeyConfigurationError, match="key id"):
        EncryptionKey(key_id, generate_key())


@pytest.mark.parametrize("key_id", ["a", "A" * 64, "main-2025.01_b"])
def test_valid_key_ids_are_accepted(key_id: str) -> None:
    assert EncryptionKey(key_id, generate_key()).key_id == key_id


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_keys_of_the_wrong_length_are_rejected(size: int) -> None:
    with pytest.raises(KeyConfigurationError, match="32 bytes"):
        EncryptionKey("k", bytes(size))


def test_keyring_needs_a_key() -> None:
    with pytest.raises(KeyConfigurationError, match="linkvault keys add"):
        Keyring([], primary="k")


def test_keyring_rejects_duplicate_ids() -> None:
    keys = [EncryptionKey.generate("k"), EncryptionKey.generate("k")]

    with pytest.raises(KeyConfigurationError, match="'k' is loaded twice"):
        Keyring(keys, primary="k")


def test_keyring_rejects_an_unknown_primary(old_key: EncryptionKey) -> None:
    with pytest.raises(KeyConfigurationError, match="'nope'"):
        Keyring([old_key], primary="nope")


@pytest.mark.parametrize(
    ("plaintext", "context"),
    [("text", CONTEXT), (PLAINTEXT, "text"), (PLAINTEXT, b""), (None, CONTEXT)],
)
def test_encrypt_rejects_bad_input(
    keyring: Keyring, plaintext: object, context: object
) -> None:
    with pytest.raises(CredentialsError):
        keyring.encrypt(plaintext, context)  # type: ignore[arg-type]


def test_decrypt_rejects_a_blob_that_is_not_bytes(keyring: Keyring) -> None:
    with pytest.raises(DecryptionError):
        keyring.decrypt("blob", CONTEXT)  # type: ignore[arg-type]


def test_generate_key_returns_32_fresh_bytes() -> None:
    first, second = generate_key(), generate_key()

    assert len(first) == 32
    assert first != second


def test_key_file_line_is_id_colon_base64(old_key: EncryptionKey) -> None:
    key_id, _, encoded = key_file_line(old_key).partition(":")

    assert key_id == "old-2024"
    assert base64.b64decode(encoded, validate=True) == old_key.material
