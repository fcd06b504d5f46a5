"""Throw-away databases on a PostgreSQL server, for a test session or a benchmark run."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from release_pipeline.db import sync_url  # psycopg, the project's one PostgreSQL driver


class ThrowawayDatabases:
    """Creates databases on the server at ``admin_url``; ``drop_all`` (or leaving the
    ``with`` block) drops every one of them, whoever is still connected."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []
        try:
            self._admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:
            raise ConnectionError(f"PostgreSQL at {admin_url} is unreachable ({exc})") from exc

    def create(self, prefix: str) -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self._admin.dispose()

    def __enter__(self) -> ThrowawayDatabases:
        return self

    def __exit__(self, *exc) -> None:
        self.drop_all()
