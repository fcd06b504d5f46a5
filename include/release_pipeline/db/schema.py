"""The release database schema (SQLAlchemy Core). Alembic migrations build it;
``tests/unit/test_migrations.py`` checks that they agree with this module."""

from __future__ import annotations

import datetime as dt

import pendulum
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive UTC text) and
    PostgreSQL (timestamptz) alike. A naive datetime is refused: it is a bug."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the release database stores aware UTC times")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        # built directly: pendulum.instance() looks the zone up twice per value, and a
        # listing converts thousands of them (a tenth of a simulated year's time)
        return pendulum.DateTime(*value.timetuple()[:6], value.microsecond, tzinfo=pendulum.UTC)


def _created() -> Column:
    return Column("created_at", UtcDateTime, nullable=False)


def _updated() -> Column:
    return Column("updated_at", UtcDateTime, nullable=False)


OEM_ID = String(40)
RELEASE_ID = String(7)

releases = Table(
    "releases",
    metadata,
    Column("id", RELEASE_ID, primary_key=True),
    Column("train_index", Integer, nullable=False, unique=True),
    Column("release_at", UtcDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text),
    Column("changes_since", UtcDateTime),
    Column("changes_until", UtcDateTime),
    _created(),
    _updated(),
)

release_changes = Table(
    "release_changes",
    metadata,
    Column("change_id", String(64), primary_key=True),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False, index=True),
    Column("type", String(20), nullable=False),
    Column("component", String(100), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("breaking", Boolean, nullable=False),
    Column("merged_at", UtcDateTime, nullable=False),
    # the change this one reverts, as the change source says (the ledger's rule L4)
    Column("reverts", String(64)),
    _created(),
)

# What happened to a release, in order: cut, QA decisions (with the reason), deploys.
release_events = Table(
    "release_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False, index=True),
    Column("event", String(40), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("detail", Text),
    _created(),
)

# Sign-off asked of an OEM for a change; one row per OEM x change.
approval_requests = Table(
    "approval_requests",
    metadata,
    Column("oem_id", OEM_ID, primary_key=True),
    Column("change_id", String(64), ForeignKey("release_changes.change_id"), primary_key=True),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Index(None, "oem_id", "release_id"),
)

# Append-only sign-off events; the state of an OEM x change is its latest event.
approval_events = Table(
    "approval_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("change_id", String(64), ForeignKey("release_changes.change_id"), nullable=False),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("recorded_by", String(100)),  # staff who recorded it on the OEM's behalf
    Column("channel", String(20), nullable=False),
    Column("comment", Text),
    _created(),
    # the approver of the OEM's sign-off policy the decision is for ('' when the OEM signs
    # off as one, or the decision predates its policy); each approver's latest counts
    Column("approver", String(100), nullable=False, server_default=""),
    Column("approver_role", String(40)),  # their role when they decided (the record keeps it)
    CheckConstraint("decision IN ('approved', 'rejected', 'overridden', 'withdrawn')", name="decision"),
    # the approval gate's one query per poll walks this index
    Index(None, "oem_id", "change_id", "id"),
    Index(None, "oem_id", "change_id", "approver", "id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("cycle_key", String(20)),
    Column("status", String(20), nullable=False),
    Column("from_release_id", RELEASE_ID),
    Column("run_id", String(250)),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("detail", Text),
    Column("log_excerpt", Text),
    # each new try of the same (OEM, release) after a terminal outcome is a new attempt:
    # the install and its messages are keyed by it, so a rerun after a rollback acts again
    Column("attempt", Integer, nullable=False, server_default="1"),
    _created(),
    _updated(),
    UniqueConstraint("oem_id", "release_id"),
)

# At most one install (or rollback) touches an OEM instance at a time, whatever runs it.
instance_locks = Table(
    "instance_locks",
    metadata,
    Column("oem_id", OEM_ID, primary_key=True),
    Column("holder", String(250), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

installed_versions = Table(
    "installed_versions",
    metadata,
    Column("oem_id", OEM_ID, primary_key=True),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("previous_release_id", RELEASE_ID),
    Column("installed_at", UtcDateTime, nullable=False),
    _updated(),
)

# Notes and roadmap publications: who (audience: 'vendor' or an OEM id) got what where.
publications = Table(
    "publications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(30), nullable=False),
    Column("scope_key", String(40), nullable=False),
    Column("audience", OEM_ID, nullable=False),
    Column("channel", String(30), nullable=False),
    Column("status", String(20), nullable=False),
    Column("location", Text),
    Column("detail", Text),
    _created(),
    _updated(),
    UniqueConstraint("kind", "scope_key", "audience", "channel"),
)

# Idempotency ledger: the key of an external side effect is stored before it is
# performed, so a rerun can tell "done" from "not done".
side_effects = Table(
    "side_effects",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("result", JSON),
    _created(),
    _updated(),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("category", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("component", String(100)),
    Column("submitted_by", String(100), nullable=False),
    Column("recorded_by", String(100)),
    Column("channel", String(20), nullable=False),
    _created(),
    # the published roadmap item staff attached this ask to (publish or merge); null:
    # not yet reviewed, or matched automatically by an item's title or alias
    Column("item_id", String(80)),
    Column("linked_by", String(100)),
    Column("linked_at", UtcDateTime),
    Index(None, "created_at"),
    Index(None, "oem_id", "created_at"),
)

feedback_requests = Table(
    "feedback_requests",
    metadata,
    Column("oem_id", OEM_ID, primary_key=True),
    Column("period_key", String(20), primary_key=True),
    Column("requested_at", UtcDateTime, nullable=False),
)

# The roadmap items OEMs see: the vendor's words (a title and a public description
# written or accepted by staff). Prioritisation counts feedback towards them.
planned_items = Table(
    "planned_items",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("component", String(100)),
    Column("target_release_id", RELEASE_ID),
    Column("detail", Text),  # internal note, never shown to an OEM
    _created(),
    Column("description", Text),  # public
    Column("kind", String(20)),
    Column("hidden_at", UtcDateTime),  # hidden by staff: shown to no OEM
    Column("updated_by", String(100)),
)

# Which roadmap items a change delivers (from the change feed's ``roadmap_items`` or
# `release-train change link-roadmap`). Items live in config/roadmap.yaml or
# planned_items, so the item id is checked by the caller, not by a foreign key.
change_roadmap_items = Table(
    "change_roadmap_items",
    metadata,
    Column("change_id", String(64), ForeignKey("release_changes.change_id"), primary_key=True),
    Column("item_id", String(80), primary_key=True, index=True),
    Column("linked_by", String(100), nullable=False),
    _created(),
)

roadmap_snapshots = Table(
    "roadmap_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("horizon", JSON, nullable=False),  # the release ids the roadmap covers
    Column("items", JSON, nullable=False),  # ranked items with score and reason
    Column("changes", JSON, nullable=False),  # what changed since the previous snapshot
    Column("run_id", String(250)),
    _created(),
    Column("candidates", JSON),  # asks not on a published item yet: staff only
)

portal_tokens = Table(
    "portal_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False, index=True),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("label", String(100), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    Column("expires_at", UtcDateTime, nullable=False),
    _created(),
    # the approver of the OEM's sign-off policy the token speaks for (None: the OEM as one)
    Column("approver", String(100)),
    # portal: the pages and the API; feed: the install calendar only (read-only, in a URL)
    Column("kind", String(10), nullable=False, server_default="portal"),
    CheckConstraint("kind IN ('portal', 'feed')", name="kind"),
)

# What each event of an OEM's install calendar last said (docs/install-calendar.md): the
# feed gives an event SEQUENCE + 1 and a new DTSTAMP when its content hash changes.
calendar_event_revisions = Table(
    "calendar_event_revisions",
    metadata,
    Column("oem_id", OEM_ID, primary_key=True),
    Column("uid", String(120), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),  # when it last changed: its DTSTAMP
)

# Sends the white-label guard stopped: nothing of them went out. One row per send
# (its idempotency key); staff release it with `release-train held release ID`.
held_sends = Table(
    "held_sends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("channel", String(20), nullable=False),  # notification | docs_page
    Column("conn_id", String(250), nullable=False),
    Column("method", String(10), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("payload", JSON, nullable=False),  # what would have been sent, as it stood
    Column("leaks", JSON, nullable=False),  # [{owner, term, found, passage, field}]
    Column("sources", JSON, nullable=False),  # change id -> its texts when held (to apply fixes)
    Column("status", String(20), nullable=False),  # held | released
    Column("attempts", Integer, nullable=False),
    Column("released_by", String(100)),
    Column("released_at", UtcDateTime),
    Column("detail", Text),
    _created(),
    _updated(),
    CheckConstraint("status IN ('held', 'released')", name="status"),
    Index(None, "status", "id"),
)

# Rollout waves (docs/waves.md): every halt and resume of a release, in order. A release
# is halted while its latest event is a halt; ``wave`` is the wave whose instance caused
# the halt (0: staff, every wave), and only later waves are held back by it.
wave_halts = Table(
    "wave_halts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("event", String(10), nullable=False),  # halted | resumed
    Column("cause", String(20)),  # rolled_back | verify_failed | regression | staff (halts only)
    Column("wave", Integer),  # halts only
    Column("oem_id", OEM_ID),  # the instance that caused it (vendor-side only, never told to an OEM)
    Column("detail", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("event IN ('halted', 'resumed')", name="event"),
    Index(None, "release_id", "id"),
)

# Regressions an OEM reported on the release its instance runs (portal, API or staff on
# its behalf). Append-only; ``vendor_alerted_at`` says the vendor's alert went out.
regression_reports = Table(
    "regression_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("description", Text, nullable=False),
    Column("reported_by", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    _created(),
    Column("vendor_alerted_at", UtcDateTime),
    Index(None, "oem_id", "id"),
)

# An OEM's request to put its instance back on the version it ran before. ``status`` is
# the latest of its events (rollback_events, append-only), kept here for the listings.
rollback_requests = Table(
    "rollback_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("oem_id", OEM_ID, nullable=False),
    Column("from_release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("to_release_id", RELEASE_ID, ForeignKey("releases.id"), nullable=False),
    Column("regression_id", Integer, ForeignKey("regression_reports.id")),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", UtcDateTime),
    Column("decision_reason", Text),
    Column("finished_at", UtcDateTime),
    Column("detail", Text),
    _created(),
    _updated(),
    CheckConstraint("status IN ('requested', 'approved', 'refused', 'done', 'failed')", name="status"),
    Index(None, "oem_id", "status"),
)

rollback_events = Table(
    "rollback_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("rollback_requests.id"), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("detail", Text),
    _created(),
)
