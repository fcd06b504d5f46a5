"""What every aggregate's store shares: the engine, the clock, an INSERT that knows
the dialect's ON CONFLICT, and the read helpers of its listings."""

from __future__ import annotations

import pendulum
from sqlalchemy import Engine, Row
from sqlalchemy.dialects import postgresql, sqlite


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


def where_given(query, *filters):
    """``query`` narrowed to ``column == value`` for each ``(column, value)`` pair whose
    value is not None: the optional filters of a listing (``None``: all)."""
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return query


class Store:
    """Base of the aggregate stores; each issues the only SQL for its own tables."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _insert(self, table):
        """``INSERT`` with ``on_conflict_do_nothing``/``_do_update`` on SQLite and PostgreSQL alike."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _all(self, query) -> list[Row]:
        """Every row of a read-only ``query``."""
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def _first(self, query) -> Row | None:
        """The first row of a read-only ``query``, or None."""
        with self.engine.connect() as conn:
            return conn.execute(query).first()
