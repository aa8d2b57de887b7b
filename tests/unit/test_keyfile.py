"""Loading keys from the environment and key files, and writing key files."""

from __future__ import annotations

import base64
import logging
import os
import stat
import uuid
from pathlib import Path

import pytest

from linkvault.adapters.crypto import (
    EncryptionKey,
    add_key_to_file,
    generate_key,
    key_file_line,
    load_keyring,
    read_key_file,
    remove_key_from_file,
    set_primary_in_file,
    write_key_file,
)
from linkvault.domain.errors import KeyConfigurationError
from linkvault.ports.cipher import connection_context

CONTEXT = connection_context(uuid.UUID(int=1), uuid.UUID(int=2))
HOW_TO = "linkvault keys add"

# Fixed test keys, so that messages can be searched for every form of them.
MATERIAL_A = bytes(range(32))
MATERIAL_B = bytes(range(100, 132))
B64_A = base64.b64encode(MATERIAL_A).decode()
B64_B = base64.b64encode(MATERIAL_B).decode()


def leaked_forms(*materials: bytes) -> list[str]:
    forms: list[str] = []
    for material in materials:
        encoded = base64.b64encode(material).decode()
        forms += [encoded, encoded.rstrip("="), material.hex(), repr(material)]
    return forms


def assert_helpful_and_secret_free(message: str, *materials: bytes) -> None:
    assert HOW_TO in message
    assert "KEY_ID:BASE64_OF_32_BYTES" in message
    for form in leaked_forms(*materials):
        assert form not in message


def make_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_single_key_from_environment_is_primary() -> None:
    keyring = load_keyring(environ={"LINKVAULT_KEYS": f"a:{B64_A}"})

    assert keyring.primary_key_id == "a"
    assert keyring.key_ids == ("a",)


def test_environment_entries_split_on_semicolons() -> None:
    environ = {"LINKVAULT_KEYS": f"a:{B64_A}; b:{B64_B}; primary: b"}

    keyring = load_keyring(environ=environ)

    assert keyring.key_ids == ("a", "b")
    assert keyring.primary_key_id == "b"


def test_environment_entries_split_on_newlines() -> None:
    environ = {"LINKVAULT_KEYS": f"# keys\na:{B64_A}\n\nb:{B64_B}\nprimary: a\n"}

    assert load_keyring(environ=environ).primary_key_id == "a"


def test_keys_loaded_from_environment_decrypt_what_they_encrypted() -> None:
    environ = {"LINKVAULT_KEYS": f"a:{B64_A};b:{B64_B};primary:a"}
    blob = load_keyring(environ=environ).encrypt(b"token", CONTEXT)

    rotated = {"LINKVAULT_KEYS": f"a:{B64_A};b:{B64_B};primary:b"}

    assert load_keyring(environ=rotated).decrypt(blob, CONTEXT) == b"token"


def test_file_from_argument(tmp_path: Path) -> None:
    path = make_file(
        tmp_path,
        f"# comment\n\n  a:{B64_A}  \r\nb : {B64_B}\nprimary: b\n",
    )

    keyring = load_keyring(key_file=path, environ={})

    assert keyring.key_ids == ("a", "b")
    assert keyring.primary_key_id == "b"


def test_file_from_environment(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    keyring = load_keyring(environ={"LINKVAULT_KEY_FILE": str(path)})

    assert keyring.primary_key_id == "a"


def test_file_argument_wins_over_environment(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    keyring = load_keyring(key_file=path, environ={"LINKVAULT_KEYS": f"b:{B64_B}"})

    assert keyring.key_ids == ("a",)


def test_both_environment_sources_are_refused(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")
    environ = {"LINKVAULT_KEYS": f"b:{B64_B}", "LINKVAULT_KEY_FILE": str(path)}

    with pytest.raises(KeyConfigurationError, match="set only one"):
        load_keyring(environ=environ)


@pytest.mark.parametrize("environ", [{}, {"LINKVAULT_KEYS": "  "}])
def test_missing_key_says_how_to_create_one(environ: dict[str, str]) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        load_keyring(environ=environ)

    message = str(caught.value)
    assert "No encryption key is configured" in message
    assert "LINKVAULT_KEYS" in message
    assert "LINKVAULT_KEY_FILE" in message
    assert_helpful_and_secret_free(message)


def test_load_reads_os_environ_when_none_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINKVAULT_KEYS", f"a:{B64_A}")
    monkeypatch.delenv("LINKVAULT_KEY_FILE", raising=False)

    assert load_keyring().primary_key_id == "a"


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent"

    with pytest.raises(KeyConfigurationError) as caught:
        load_keyring(key_file=path, environ={})

    assert str(path) in str(caught.value)
    assert_helpful_and_secret_free(str(caught.value))


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="cannot be read"):
        load_keyring(key_file=tmp_path, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "contains no key", id="empty"),
        pytest.param("# only a comment\n\n", "contains no key", id="only-comments"),
        pytest.param(f"{B64_A}\n", "line 1", id="no-key-id"),
        pytest.param(f"# c\n{B64_A}:a\n", "line 2", id="id-and-key-swapped"),
        pytest.param(f"bad id:{B64_A}\n", "valid key id", id="bad-key-id"),
        pytest.param(f"{'x' * 65}:{B64_A}\n", "valid key id", id="long-key-id"),
        pytest.param(f"primary:{B64_A}\n", "valid key id", id="key-named-primary"),
        pytest.param("a:\n", "no key after the colon", id="empty-key"),
        pytest.param(f"a:{B64_A[:-1]}!\n", "base64", id="bad-base64"),
        pytest.param(f"a:{B64_A.rstrip('=')}\n", "base64", id="no-padding"),
        pytest.param(
            f"a:{base64.b64encode(MATERIAL_A[:16]).decode()}\n",
            "16 bytes",
            id="short-key",
        ),
        pytest.param(
            f"a:{base64.b64encode(MATERIAL_A + MATERIAL_B).decode()}\n",
            "64 bytes",
            id="long-key",
        ),
        pytest.param(f"a:{B64_A}\na:{B64_B}\n", "'a' a second time", id="duplicate"),
        pytest.param(f"a:{B64_A}\nb:{B64_B}\n", "no `primary", id="no-primary"),
        pytest.param(f"a:{B64_A}\nprimary: z\n", "'z' as primary", id="bad-primary"),
        pytest.param(
            f"a:{B64_A}\nprimary: a\nprimary: a\n", "second time", id="two-primaries"
        ),
        pytest.param(f"a:{B64_A}\nprimary:\n", "after `primary:`", id="empty-primary"),
    ],
)
def test_malformed_key_file_is_refused_helpfully(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = make_file(tmp_path, text)

    with pytest.raises(KeyConfigurationError) as caught:
        load_keyring(key_file=path, environ={})

    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert_helpful_and_secret_free(message, MATERIAL_A, MATERIAL_B)


def test_malformed_environment_entry_is_numbered() -> None:
    environ = {"LINKVAULT_KEYS": f"a:{B64_A};b:{B64_A[:-2]}"}

    with pytest.raises(KeyConfigurationError) as caught:
        load_keyring(environ=environ)

    message = str(caught.value)
    assert "entry 2 of LINKVAULT_KEYS" in message
    assert_helpful_and_secret_free(message, MATERIAL_A)


def test_write_key_file_has_mode_0600_even_with_open_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    previous = os.umask(0)
    try:
        write_key_file(path, [EncryptionKey("a", MATERIAL_A)], "a")
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_written_key_file_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keys"
    keys = [EncryptionKey("a", MATERIAL_A), EncryptionKey("b", MATERIAL_B)]

    write_key_file(path, keys, "b")

    assert read_key_file(path).keys == tuple(keys)
    assert load_keyring(key_file=path, environ={}).primary_key_id == "b"
    assert f"a:{B64_A}" in path.read_text().splitlines()
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys"]


def test_write_key_file_does_not_replace_an_existing_file(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    with pytest.raises(KeyConfigurationError, match="already exists"):
        write_key_file(path, [EncryptionKey("b", MATERIAL_B)], "b")

    assert path.read_text() == f"a:{B64_A}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_write_key_file_replaces_when_asked(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n", mode=0o644)

    write_key_file(path, [EncryptionKey("b", MATERIAL_B)], "b", overwrite=True)

    assert read_key_file(path).primary == "b"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_key_file_validates_the_primary(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="'z'"):
        write_key_file(tmp_path / "keys", [EncryptionKey("a", MATERIAL_A)], "z")

    assert not (tmp_path / "keys").exists()


def test_loading_a_readable_key_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n", mode=0o644)

    with caplog.at_level(logging.WARNING, logger="linkvault"):
        load_keyring(key_file=path, environ={})

    assert "chmod 600" in caplog.text
    assert B64_A not in caplog.text


def test_loading_a_private_key_file_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    with caplog.at_level(logging.DEBUG, logger="linkvault"):
        load_keyring(key_file=path, environ={})

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert B64_A not in caplog.text


def test_add_key_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"

    key = add_key_to_file(path, "first")

    assert read_key_file(path).primary == "first"
    assert read_key_file(path).keys == (key,)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_key_keeps_the_primary_unless_asked(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    add_key_to_file(path, "b")
    assert read_key_file(path).primary == "a"

    add_key_to_file(path, "c", make_primary=True)
    loaded = read_key_file(path)
    assert loaded.primary == "c"
    assert [k.key_id for k in loaded.keys] == ["a", "b", "c"]
    assert loaded.keys[0].material == MATERIAL_A


def test_add_key_refuses_a_used_id(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\n")

    with pytest.raises(KeyConfigurationError, match="already has a key 'a'"):
        add_key_to_file(path, "a")

    assert path.read_text() == f"a:{B64_A}\n"


def test_set_primary_in_file(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\nb:{B64_B}\nprimary: a\n")

    set_primary_in_file(path, "b")

    assert read_key_file(path).primary == "b"
    with pytest.raises(KeyConfigurationError, match="no key 'z'"):
        set_primary_in_file(path, "z")


def test_remove_key_retires_only_a_non_primary_key(tmp_path: Path) -> None:
    path = make_file(tmp_path, f"a:{B64_A}\nb:{B64_B}\nprimary: b\n")

    with pytest.raises(KeyConfigurationError, match="is the primary key"):
        remove_key_from_file(path, "b")
    remove_key_from_file(path, "a")

    assert [k.key_id for k in read_key_file(path).keys] == ["b"]


def test_key_file_line_loads_back() -> None:
    key = EncryptionKey("fresh", generate_key())

    keyring = load_keyring(environ={"LINKVAULT_KEYS": key_file_line(key)})

    blob = keyring.encrypt(b"x", CONTEXT)
    assert keyring.decrypt(blob, CONTEXT) == b"x"
    assert keyring.primary_key_id == "fresh"
