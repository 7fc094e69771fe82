"""The conversation list reads the newest conversations a page at a time (``HistoryStore.list_conversations``):
an index in that order lets each page be read without sorting every conversation.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_conversations_recent", "conversations", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_conversations_recent", table_name="conversations")
