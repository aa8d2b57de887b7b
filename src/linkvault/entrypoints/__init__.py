"""Entrypoints: the command line and long-running processes."""
