"""Comparisons: one input run on 2–4 models side by side, each model's output and figures, and the verdict.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("input_name", sa.Text(), nullable=False),
        sa.Column("input_kind", sa.Text(), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("machine", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=True),
        sa.Column("winner_position", sa.Integer(), nullable=True),
        sa.Column("voted_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('chat', 'summarize', 'translate', 'classify')", name=op.f("ck_comparisons_kind")),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'cancelled', 'failed', 'interrupted')", name=op.f("ck_comparisons_status")
        ),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN ('winner', 'tie', 'both_bad')", name=op.f("ck_comparisons_verdict")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    op.create_index(op.f("ix_comparisons_created_at"), "comparisons", ["created_at"])
    op.create_table(
        "comparison_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comparison_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("file_bytes", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'running', 'done', 'cancelled', 'failed', 'interrupted')",
            name=op.f("ck_comparison_entries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["comparison_id"], ["comparisons.id"], name=op.f("fk_comparison_entries_comparison_id_comparisons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_entries")),
    )
    op.create_index(op.f("ix_comparison_entries_comparison_id"), "comparison_entries", ["comparison_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_comparison_entries_comparison_id"), table_name="comparison_entries")
    op.drop_table("comparison_entries")
    op.drop_index(op.f("ix_comparisons_created_at"), table_name="comparisons")
    op.drop_table("comparisons")
