"""The `linkvault` command line."""

from linkvault.entrypoints.cli.main import app, main

__all__ = ["app", "main"]
