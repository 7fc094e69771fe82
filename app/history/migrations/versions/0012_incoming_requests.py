"""The network log also keeps the requests other programs made to the local server (``incoming``), which the Privacy
page lists apart from Hearth's own requests.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_requests") as batch:
        batch.add_column(sa.Column("incoming", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("network_requests") as batch:
        batch.drop_column("incoming")
