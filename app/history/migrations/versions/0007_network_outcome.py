"""Network requests: every attempt is kept with its outcome (answered, refused, failed, blocked by Work offline),
not only those that were answered.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("network_requests", sa.Column("outcome", sa.Text(), nullable=False, server_default="answered"))


def downgrade() -> None:
    with op.batch_alter_table("network_requests") as batch:
        batch.drop_column("outcome")
