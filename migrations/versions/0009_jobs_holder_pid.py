"""jobs: the backend pid that holds a run's advisory lock, so killed runs show as interrupted

A run killed with SIGKILL cannot finish its job record; it stayed `running` until the next
run of the same target. With the pid of the PostgreSQL backend whose session holds the
run's advisory lock (the lock ends with that backend), `cubestac jobs` tells a live run
from a dead one at any time: see `catalogue.repositories.jobs.recent_jobs`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("holder_pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "holder_pid")
