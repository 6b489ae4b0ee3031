"""Alembic environment and revisions of the catalogue schema (run by `cubestac db upgrade`)."""
