"""The error the demo raises when a step cannot go on."""

from __future__ import annotations

from linkvault.domain.errors import LinkvaultError


class DemoError(LinkvaultError):
    """A demo step failed. The message names the step and the log file to read."""
