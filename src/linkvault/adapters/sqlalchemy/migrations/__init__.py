"""Alembic migrations of linkvault's schema, for SQLite and PostgreSQL."""
