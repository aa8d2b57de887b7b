"""Entry point of `python -m linkvault.sandbox`."""

from linkvault.sandbox.cli import main

raise SystemExit(main())
