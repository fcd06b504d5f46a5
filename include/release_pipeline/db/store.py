"""What every aggregate's store shares: the engine, the clock, and an INSERT that
knows the dialect's ON CONFLICT."""

from __future__ import annotations

import pendulum
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


class Store:
    """Base of the aggregate stores; each issues the only SQL for its own tables."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _insert(self, table):
        """``INSERT`` with ``on_conflict_do_nothing``/``_do_update`` on SQLite and PostgreSQL alike."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)
