"""jobs belong to their creator (jobs.created_by); idempotency keys are unique per owner

Revision ID: 0003_job_owner
Revises: 0002_users
Create Date: 2026-12-01

Jobs accepted before this revision have no owner: only admins (listing with ``all=true``)
see them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_job_owner"
down_revision: str | None = "0002_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_jobs_idempotency_key", type_="unique")
        batch.create_unique_constraint(
            "uq_jobs_created_by_idempotency_key", ["created_by", "idempotency_key"]
        )
        batch.create_index("ix_jobs_created_by_id", ["created_by", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_created_by_id")
        batch.drop_constraint("uq_jobs_created_by_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
        batch.drop_column("created_by")
