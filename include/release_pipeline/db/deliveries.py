"""Deliveries to OEM instances: the only SQL for ``deliveries``,
``installed_versions`` and ``instance_locks``.

A delivery row is an idempotent upsert keyed by OEM and release, so a rerun
rewrites it rather than adding another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, delete, select

from release_pipeline.db import schema as t
from release_pipeline.db.releases import release_recorded
from release_pipeline.db.store import Store, hold_signoff_lock, utc_now, where_given
from release_pipeline.models import DeliveryStatus, ReleaseDbError

T = TypeVar("T")

_DELIVERY_FIELDS = frozenset(
    {"cycle_key", "from_release_id", "run_id", "started_at", "finished_at", "detail", "log_excerpt", "attempt"}
)
# a delivery in one of these states has put (or is putting) its release on the instance
CLOSED_DELIVERIES = (DeliveryStatus.INSTALLING, DeliveryStatus.INSTALLED, DeliveryStatus.NOOP)


def signoff_closed(conn: Connection, oem_id: str, release_id: str) -> str | None:
    """Why the OEM can no longer decide on ``release_id``, read on ``conn`` (None: open).
    Releases are cumulative, so an installed later release (or one being installed)
    delivered it too."""
    installed = conn.scalar(select(t.installed_versions.c.release_id).where(t.installed_versions.c.oem_id == oem_id))
    if installed is not None and installed >= release_id:
        return f"release {release_id} is already installed (the instance runs {installed})"
    deliveries = t.deliveries.c
    delivery = conn.execute(
        select(deliveries.release_id, deliveries.status)
        .where(
            deliveries.oem_id == oem_id,
            deliveries.release_id >= release_id,
            deliveries.status.in_([str(s) for s in CLOSED_DELIVERIES]),
        )
        .order_by(deliveries.release_id)
        .limit(1)
    ).first()
    if delivery is None:
        return None
    if delivery.status == DeliveryStatus.INSTALLING:
        return f"the install of {delivery.release_id} on the instance has started"
    return f"release {release_id} is already delivered (delivery of {delivery.release_id}: {delivery.status})"


class DeliveryStore(Store):
    def upsert_delivery(self, oem_id: str, release_id: str, *, status: DeliveryStatus, **fields: Any) -> None:
        if unknown := set(fields) - _DELIVERY_FIELDS:
            raise TypeError(f"unknown delivery fields: {sorted(unknown)}")
        with self.engine.begin() as conn:
            self._upsert_delivery(conn, oem_id, release_id, status=status, **fields)

    def _upsert_delivery(self, conn: Connection, oem_id: str, release_id: str, *, status, **fields: Any) -> None:
        now = utc_now()
        values = {"status": str(status), "updated_at": now, **fields}
        statement = self._insert(t.deliveries).values(oem_id=oem_id, release_id=release_id, created_at=now, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["oem_id", "release_id"], set_=values))

    def start_install(
        self,
        oem_id: str,
        release_id: str,
        *,
        last_look: Callable[[], T],
        proceed: Callable[[T], bool],
        **fields: Any,
    ) -> T:
        """Close the OEM's sign-off for the install of ``release_id``: under the OEM's
        sign-off lock (:func:`hold_signoff_lock`, which every decision takes too), take
        ``last_look()`` and, when ``proceed`` says so, mark the delivery ``installing``
        in the same transaction. A decision committed before counts in the last look; one
        after finds the delivery installing and is refused. Returns the last look.

        ``last_look`` only reads (on its own connections: it sees every decision
        committed before the lock, none can commit while it is held)."""
        if unknown := set(fields) - _DELIVERY_FIELDS:
            raise TypeError(f"unknown delivery fields: {sorted(unknown)}")
        with self.engine.begin() as conn:
            hold_signoff_lock(conn, oem_id)
            look = last_look()
            if proceed(look):
                self._upsert_delivery(conn, oem_id, release_id, status=DeliveryStatus.INSTALLING, **fields)
            return look

    def signoff_closed_reason(self, oem_id: str, release_id: str) -> str | None:
        """:func:`signoff_closed` as things stand."""
        with self.engine.connect() as conn:
            return signoff_closed(conn, oem_id, release_id)

    def delivery(self, oem_id: str, release_id: str) -> Row | None:
        deliveries = t.deliveries.c
        query = select(t.deliveries).where(deliveries.oem_id == oem_id, deliveries.release_id == release_id)
        return self._first(query)

    def deliveries(self, oem_id: str | None = None) -> list[Row]:
        deliveries = t.deliveries.c
        query = select(t.deliveries).order_by(deliveries.oem_id, deliveries.release_id)
        return self._all(where_given(query, (deliveries.oem_id, oem_id)))

    def installs(self, oem_ids: Iterable[str]) -> list[Row]:
        """The deliveries that installed a release on any of ``oem_ids``' instances (a
        rolled-back or failed one installed nothing), in the order they finished."""
        deliveries = t.deliveries.c
        query = (
            select(t.deliveries)
            .where(deliveries.oem_id.in_(list(oem_ids)), deliveries.status == str(DeliveryStatus.INSTALLED))
            .order_by(deliveries.oem_id, deliveries.finished_at, deliveries.release_id)
        )
        return self._all(query)

    def withdraw_waiting_delivery(self, oem_id: str, release_id: str, *, run_id: str) -> None:
        """Forget a run's forecast (a ``waiting`` row it wrote) once it aims elsewhere."""
        deliveries = t.deliveries.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.deliveries).where(
                    deliveries.oem_id == oem_id,
                    deliveries.release_id == release_id,
                    deliveries.run_id == run_id,
                    deliveries.status == str(DeliveryStatus.WAITING),
                )
            )

    def installed_version(self, oem_id: str) -> Row | None:
        return self._first(select(t.installed_versions).where(t.installed_versions.c.oem_id == oem_id))

    def installed_versions(self) -> dict[str, Row]:
        with self.engine.connect() as conn:
            return {row.oem_id: row for row in conn.execute(select(t.installed_versions))}

    def set_installed_version(self, oem_id: str, release_id: str, *, at: dt.datetime | None = None) -> None:
        now = utc_now()
        installed = t.installed_versions.c
        with self.engine.begin() as conn:
            if not release_recorded(conn, release_id):
                raise ReleaseDbError(f"OEM {oem_id!r}: release {release_id!r} is not recorded")
            previous = conn.scalar(select(installed.release_id).where(installed.oem_id == oem_id))
            if previous == release_id:
                return
            values = {
                "release_id": release_id,
                "previous_release_id": previous,
                "installed_at": at or now,
                "updated_at": now,
            }
            conn.execute(
                self._insert(t.installed_versions)
                .values(oem_id=oem_id, **values)
                .on_conflict_do_update(index_elements=["oem_id"], set_=values)
            )

    def acquire_instance_lock(self, oem_id: str, holder: str, *, ttl: dt.timedelta) -> str | None:
        """Take the OEM instance's lock for ``holder``; returns None when taken, else
        the holder of the live lock that refused it. A lock past its expiry (its holder
        died) is taken over; the same holder taking it again renews it."""
        now = utc_now()
        lock = t.instance_locks.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.instance_locks).where(
                    lock.oem_id == oem_id, (lock.expires_at <= now) | (lock.holder == holder)
                )
            )
            inserted = conn.execute(
                self._insert(t.instance_locks)
                .values(oem_id=oem_id, holder=holder, acquired_at=now, expires_at=now + ttl)
                .on_conflict_do_nothing()
            )
            if inserted.rowcount == 1:
                return None
            return conn.scalar(select(lock.holder).where(lock.oem_id == oem_id)) or "another holder"

    def release_instance_lock(self, oem_id: str, holder: str) -> None:
        lock = t.instance_locks.c
        with self.engine.begin() as conn:
            conn.execute(delete(t.instance_locks).where(lock.oem_id == oem_id, lock.holder == holder))
