"""Alembic environment for Hearth's history database.

Hearth runs migrations itself (see ``app.history.database``) on a connection it has already opened,
checked and backed up, so there is no ``alembic.ini``, no URL and no offline mode here.
"""

from __future__ import annotations

from alembic import context

from app.history.database import in_orm
from app.history.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("history migrations run through app.history.database.open_database")
    # SQLite cannot alter most things in place; batch mode rebuilds the table instead.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      include_name=in_orm)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
