"""Load records: what the forecast said before each load, and what the load really used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("estimate", sa.JSON(), nullable=False),
        sa.Column("measured", sa.JSON(), nullable=False),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_records")),
    )
    op.create_index(op.f("ix_load_records_model_path"), "load_records", ["model_path"])


def downgrade() -> None:
    op.drop_index(op.f("ix_load_records_model_path"), table_name="load_records")
    op.drop_table("load_records")
