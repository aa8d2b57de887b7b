"""Entry point of `python -m linkvault`, the same as the `linkvault` command."""

from linkvault.entrypoints.cli import main

main()
