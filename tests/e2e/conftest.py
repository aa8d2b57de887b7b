"""Fixtures for end-to-end tests that run the sandbox authorization server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_process import SandboxHandle, running_sandbox


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxHandle]:
    """One sandbox process with default settings for a whole test module."""
    with running_sandbox() as handle:
        yield handle


@pytest.fixture
def sandbox(shared_sandbox: SandboxHandle) -> SandboxHandle:
    """The module's sandbox with its state reset for this test."""
    shared_sandbox.reset()
    return shared_sandbox
