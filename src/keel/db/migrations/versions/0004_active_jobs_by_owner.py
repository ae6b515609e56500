"""an owner's active jobs by index (created_by, status): the admission check stays O(limit)

Revision ID: 0004_active_jobs_by_owner
Revises: 0003_job_owner
Create Date: 2026-12-01

Accepting a job counts the caller's queued and running jobs (JOB_MAX_ACTIVE_PER_OWNER). On
(created_by, id) alone that count read every job the caller ever had; on (created_by, status)
it reads only the active ones, and the check stops after the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_active_jobs_by_owner"
down_revision: str | None = "0003_job_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_created_by_status", "jobs", ["created_by", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_created_by_status", table_name="jobs")
