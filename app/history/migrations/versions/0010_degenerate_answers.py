"""An answer can end "degenerate": stopped because the model was repeating itself (``app.degenerate``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BEFORE = "finish_reason IS NULL OR finish_reason IN ('stop', 'length', 'cancelled', 'interrupted', 'error')"
_AFTER = ("finish_reason IS NULL"
          " OR finish_reason IN ('stop', 'length', 'cancelled', 'interrupted', 'error', 'degenerate')")


def upgrade() -> None:
    with op.batch_alter_table("messages", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_messages_finish_reason"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_finish_reason"), _AFTER)


def downgrade() -> None:
    op.execute("UPDATE messages SET finish_reason = 'stop' WHERE finish_reason = 'degenerate'")
    with op.batch_alter_table("messages", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_messages_finish_reason"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_finish_reason"), _BEFORE)
