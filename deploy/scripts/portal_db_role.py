"""The OEM portal's own PostgreSQL role: ``airflow-init`` runs it after the release
database's migrations, every start (idempotent), as the release database's owner.

    PORTAL_DB_PASSWORD=... python deploy/scripts/portal_db_role.py \
        --db-url postgresql://airflow:...@postgres:5432/release_train --metadata-db airflow

The portal faces the OEMs, so it is the service most exposed to attack; before this role
it connected as the superuser that owns Airflow's metadata database (connections, their
passwords and keys, variables). The role may log in to the release database only, may
read the tables the portal shows, and may write exactly what the portal writes: an OEM's
sign-off events, feedback, regression reports and rollback requests, and a token's
``last_used_at``. It owns nothing, creates
nothing, and cannot connect to Airflow's metadata database.

Exit 0 when done, 1 on a database error, 2 on bad arguments or a missing password.
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg
from psycopg import sql

ROLE = "oem_portal"
PASSWORD_ENV = "PORTAL_DB_PASSWORD"

# what the portal reads: releases, their history (when a change reached production, for
# the change's trace) and their changes, sign-off requests and events, the OEM's
# deliveries and installed version, feedback, the roadmap, and tokens to sign in
READS = (
    "releases",
    "release_events",
    "release_changes",
    "approval_requests",
    "approval_events",
    "deliveries",
    "installed_versions",
    "feedback",
    "planned_items",
    "change_roadmap_items",
    "roadmap_snapshots",
    "portal_tokens",
    "calendar_event_revisions",
    "regression_reports",
    "rollback_requests",
    "rollback_events",
)
# what it writes: append-only sign-off events, feedback, regression reports and rollback
# requests with their first history event (and their ids; staff decide on requests, and the
# vendor alert of a report is sent and marked by Airflow, which holds the channels), and what
# each event of an OEM's install calendar last said (its SEQUENCE; that table has no id sequence)
INSERTS = (
    "approval_events",
    "feedback",
    "regression_reports",
    "rollback_requests",
    "rollback_events",
    "calendar_event_revisions",
)
SERIAL_IDS = ("approval_events", "feedback", "regression_reports", "rollback_requests", "rollback_events")
# a token's last use; and the sign-off's ``SELECT ... FOR UPDATE`` of the requests it
# decides on, which PostgreSQL allows only with UPDATE on a column of the table: the
# request's timestamp, the column whose change would matter least
UPDATES = {
    "portal_tokens": ("last_used_at",),
    "approval_requests": ("requested_at",),
    "calendar_event_revisions": ("content_hash", "sequence", "changed_at"),
}
# never: held sends (other OEMs' texts the guard stopped), side effects, publications,
# locks, release events, feedback requests, the migration version


def statements(role: str, password: str, release_db: str, metadata_db: str | None) -> list[sql.Composable]:
    ident = sql.Identifier
    out: list[sql.Composable] = [
        sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) "
            "THEN CREATE ROLE {role}; END IF; END $$"
        ).format(name=sql.Literal(role), role=ident(role)),
        sql.SQL(
            "ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            "NOINHERIT CONNECTION LIMIT 40 PASSWORD {password}"
        ).format(role=ident(role), password=sql.Literal(password)),
        # the release database: this role (and the owner) only, no one else by default
        sql.SQL("REVOKE ALL ON DATABASE {db} FROM PUBLIC").format(db=ident(release_db)),
        sql.SQL("GRANT CONNECT ON DATABASE {db} TO {role}").format(db=ident(release_db), role=ident(role)),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {role}").format(role=ident(role)),
        # start from nothing on every run, so a grant taken out here is taken back there
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}").format(role=ident(role)),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}").format(role=ident(role)),
        sql.SQL("GRANT SELECT ON {tables} TO {role}").format(
            tables=sql.SQL(", ").join(map(ident, READS)), role=ident(role)
        ),
        sql.SQL("GRANT INSERT ON {tables} TO {role}").format(
            tables=sql.SQL(", ").join(map(ident, INSERTS)), role=ident(role)
        ),
    ]
    for table, columns in UPDATES.items():
        out.append(
            sql.SQL("GRANT UPDATE ({columns}) ON {table} TO {role}").format(
                columns=sql.SQL(", ").join(map(ident, columns)), table=ident(table), role=ident(role)
            )
        )
    for table in SERIAL_IDS:  # the id sequences of the rows it inserts
        out.append(
            sql.SQL(
                "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', "
                "pg_get_serial_sequence({table}, 'id'), {name}); END $$"
            ).format(table=sql.Literal(table), name=sql.Literal(role))
        )
    if metadata_db:  # Airflow's metadata database: no connection for anyone but its owner
        out.append(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC").format(db=ident(metadata_db)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", required=True, help="the release database, as its owner")
    parser.add_argument("--role", default=ROLE, help=f"the portal's role (default {ROLE})")
    parser.add_argument("--metadata-db", help="Airflow's metadata database: PUBLIC loses CONNECT on it")
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV, "")
    if not password.strip():
        print(f"error: {PASSWORD_ENV} is not set: the portal's database role needs a password", file=sys.stderr)
        return 2
    try:
        with psycopg.connect(args.db_url, autocommit=False) as conn:
            release_db = conn.info.dbname
            for statement in statements(args.role, password, release_db, args.metadata_db):
                conn.execute(statement)
    except psycopg.Error as exc:
        print(f"error: the portal's database role {args.role!r}: {exc}", file=sys.stderr)
        return 1
    print(f"portal role {args.role!r}: reads {len(READS)} tables of {release_db!r}, writes {', '.join(INSERTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
