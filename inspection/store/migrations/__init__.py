"""Alembic migrations for the inspection store (run by `store.upgrade_database`)."""
