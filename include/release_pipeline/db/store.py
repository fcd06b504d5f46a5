"""What every aggregate's store shares: the engine, the clock, an INSERT that knows
the dialect's ON CONFLICT, and the read helpers of its listings."""

from __future__ import annotations

import pendulum
from sqlalchemy import Connection, Engine, Row, func, select
from sqlalchemy.dialects import postgresql, sqlite

# the first key of the PostgreSQL advisory locks this project takes (the second is the OEM's)
_SIGNOFF_LOCK_SPACE = 0x52545347  # "RTSG"


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


def where_given(query, *filters):
    """``query`` narrowed to ``column == value`` for each ``(column, value)`` pair whose
    value is not None: the optional filters of a listing (``None``: all)."""
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return query


def hold_signoff_lock(conn: Connection, oem_id: str) -> None:
    """Make ``conn``'s transaction the only one deciding on or closing ``oem_id``'s sign-off
    until it ends: recording a decision (``record_decisions``) and starting an install
    (``start_install``) both begin with this, so one of them waits for the other, and a
    check made after it stands until commit. Must be the transaction's first statement.

    PostgreSQL: a transaction-scoped advisory lock keyed by the OEM (released at commit
    or rollback; other OEMs are not held up), which needs no row to exist yet. SQLite:
    ``BEGIN IMMEDIATE``, the database's one write lock, taken before the first read (a
    deferred transaction would read, then fail to upgrade to a writer at once instead of
    waiting, when another writer committed meanwhile)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_SIGNOFF_LOCK_SPACE, func.hashtext(oem_id))))
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
