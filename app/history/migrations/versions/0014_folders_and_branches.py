"""Folders for conversations (each with a default system prompt and model), pinned conversations, and branches of a
conversation: an edited message or a regenerated answer is a new version beside the old one.

A message's ``parent_id`` is the message before it on its branch; versions of a message share a parent. The
branch shown is the messages with ``off_branch`` false, so every reader of a conversation (its pages, the prompt)
keeps reading "the messages in the order they were added" and sees one branch. Existing messages become one
branch: each one's parent is the message added before it.

Two partial indexes let a start find the answers left unfinished and the messages deleted without reading every
message (each a scan of about 30 ms at 100,000 messages).

No foreign keys on the new columns: on SQLite, adding one to a table rebuilds it, which would drop the search
index's triggers (migration 0013), and the store keeps the links when it purges.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_folders")),
    )
    op.add_column("conversations", sa.Column("folder_id", sa.Integer(), nullable=True))
    op.add_column("conversations", sa.Column("pinned_at", sa.DateTime(), nullable=True))
    op.create_index(op.f("ix_conversations_folder_id"), "conversations", ["folder_id"])
    op.add_column("messages", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("off_branch", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(op.f("ix_messages_parent_id"), "messages", ["parent_id"])
    op.create_index("ix_messages_unfinished", "messages", ["id"], sqlite_where=sa.text("finish_reason IS NULL"))
    op.create_index("ix_messages_deleted", "messages", ["deleted_at"], sqlite_where=sa.text("deleted_at IS NOT NULL"))
    op.execute("UPDATE messages SET parent_id = (SELECT MAX(earlier.id) FROM messages AS earlier "
               "WHERE earlier.conversation_id = messages.conversation_id AND earlier.id < messages.id)")


def downgrade() -> None:
    op.drop_index("ix_messages_deleted", "messages")
    op.drop_index("ix_messages_unfinished", "messages")
    op.drop_index(op.f("ix_messages_parent_id"), "messages")
    op.drop_index(op.f("ix_conversations_folder_id"), "conversations")
    op.execute("DELETE FROM messages WHERE off_branch")
    for table, columns in (("messages", ("parent_id", "off_branch")), ("conversations", ("folder_id", "pinned_at"))):
        for name in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    op.drop_table("folders")
