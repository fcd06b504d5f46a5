"""What OEMs ask for and what the vendor plans: the only SQL for ``feedback``,
``feedback_requests``, ``planned_items``, ``change_roadmap_items`` (which roadmap
items a change delivers; read joined with its change and release) and
``roadmap_snapshots``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pendulum
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, utc_now, where_given
from release_pipeline.models import FeedbackCategory, ReleaseDbError

_PLANNED_ITEM_FIELDS = frozenset({"title", "description", "component", "kind", "target_release_id", "hidden_at"})


class RoadmapStore(Store):
    # -- feedback ----------------------------------------------------------------------
    def record_feedback(
        self,
        *,
        oem_id: str,
        category: FeedbackCategory,
        title: str,
        body: str,
        submitted_by: str,
        channel: str,
        component: str | None = None,
        recorded_by: str | None = None,
        at: dt.datetime | None = None,
    ) -> int:
        category = FeedbackCategory(category)
        if not title.strip():
            raise ReleaseDbError(f"feedback from OEM {oem_id!r} needs a title")
        with self.engine.begin() as conn:
            result = conn.execute(
                t.feedback.insert().values(
                    oem_id=oem_id,
                    category=str(category),
                    title=title.strip(),
                    body=body,
                    component=component,
                    submitted_by=submitted_by,
                    recorded_by=recorded_by,
                    channel=channel,
                    created_at=at or utc_now(),
                )
            )
            return result.inserted_primary_key[0]

    def feedback(self, *, since: dt.datetime | None = None, oem_id: str | None = None) -> list[Row]:
        feedback = t.feedback.c
        query = select(t.feedback).order_by(feedback.created_at, feedback.id)
        if since is not None:
            query = query.where(feedback.created_at >= since)
        return self._all(where_given(query, (feedback.oem_id, oem_id)))

    def feedback_item(self, feedback_id: int) -> Row | None:
        return self._first(select(t.feedback).where(t.feedback.c.id == feedback_id))

    def feedback_times_since(self, oem_id: str, since: dt.datetime) -> list[pendulum.DateTime]:
        """When each of the OEM's feedback items after ``since`` was recorded, oldest first."""
        feedback = t.feedback.c
        query = (
            select(feedback.created_at)
            .where(feedback.oem_id == oem_id, feedback.created_at > since)
            .order_by(feedback.created_at)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def link_feedback(self, feedback_id: int, item_id: str | None, *, by: str, at: dt.datetime | None = None) -> bool:
        """Attach an ask to a roadmap item (``None`` detaches it); False: no such feedback."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.feedback)
                .where(t.feedback.c.id == feedback_id)
                .values(item_id=item_id, linked_by=by, linked_at=at or utc_now())
            )
            return result.rowcount == 1

    def record_feedback_request(self, oem_id: str, period_key: str) -> bool:
        """True when this OEM had not yet been asked for feedback in ``period_key``."""
        with self.engine.begin() as conn:
            result = conn.execute(
                self._insert(t.feedback_requests)
                .values(oem_id=oem_id, period_key=period_key, requested_at=utc_now())
                .on_conflict_do_nothing()
            )
            return result.rowcount == 1

    def last_feedback_request(self, oem_id: str) -> Row | None:
        requests = t.feedback_requests.c
        query = (
            select(t.feedback_requests).where(requests.oem_id == oem_id).order_by(requests.requested_at.desc()).limit(1)
        )
        return self._first(query)

    # -- planned items -----------------------------------------------------------------
    def upsert_planned_item(
        self,
        item_id: str,
        *,
        title: str,
        component: str | None = None,
        target_release_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        values = {"title": title, "component": component, "target_release_id": target_release_id, "detail": detail}
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(t.planned_items)
                .values(id=item_id, created_at=utc_now(), **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )

    def planned_items(self) -> list[Row]:
        return self._all(select(t.planned_items).order_by(t.planned_items.c.id))

    def planned_item(self, item_id: str) -> Row | None:
        return self._first(select(t.planned_items).where(t.planned_items.c.id == item_id))

    def publish_planned_item(
        self,
        item_id: str,
        *,
        title: str,
        description: str,
        by: str,
        kind: str | None = None,
        component: str | None = None,
        target_release_id: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """A new roadmap item in the vendor's words; refuses an id already taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.planned_items.insert().values(
                        id=item_id,
                        title=title,
                        description=description,
                        kind=kind,
                        component=component,
                        target_release_id=target_release_id,
                        updated_by=by,
                        created_at=at or utc_now(),
                    )
                )
        except IntegrityError:
            raise ReleaseDbError(f"roadmap item id {item_id!r} is already taken") from None

    def update_planned_item(self, item_id: str, *, by: str, **values: Any) -> bool:
        """Change fields of a database item (title, description, component, kind,
        target_release_id, hidden_at); False when there is no such row."""
        if unknown := set(values) - _PLANNED_ITEM_FIELDS:
            raise ReleaseDbError(f"planned item fields {sorted(unknown)} cannot be changed")
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.planned_items).where(t.planned_items.c.id == item_id).values(updated_by=by, **values)
            )
            return result.rowcount == 1

    def free_planned_item_id(self, also_taken: Iterable[str] = (), prefix: str = "item-") -> str:
        """The next unused ``item-N`` id: a number, never derived from anyone's text."""
        with self.engine.connect() as conn:
            taken = set(conn.execute(select(t.planned_items.c.id)).scalars()) | set(also_taken)
        numbers = [int(i[len(prefix) :]) for i in taken if i.startswith(prefix) and i[len(prefix) :].isdigit()]
        return f"{prefix}{max(numbers, default=0) + 1}"

    # -- the roadmap items changes deliver ---------------------------------------------
    def link_change_roadmap_items(
        self, change_id: str, item_ids: Iterable[str], *, by: str, at: dt.datetime | None = None
    ) -> list[str]:
        """Record that ``change_id`` delivers ``item_ids`` (ids already checked against the
        roadmap by the caller); returns the links that are new, so a rerun adds nothing."""
        item_ids = list(dict.fromkeys(item_ids))
        with self.engine.begin() as conn:
            known = select(t.release_changes.c.change_id).where(t.release_changes.c.change_id == change_id)
            if conn.execute(known).first() is None:
                raise ReleaseDbError(f"no change {change_id!r}")
            added = []
            for item_id in item_ids:
                result = conn.execute(
                    self._insert(t.change_roadmap_items)
                    .values(change_id=change_id, item_id=item_id, linked_by=by, created_at=at or utc_now())
                    .on_conflict_do_nothing()
                )
                if result.rowcount == 1:
                    added.append(item_id)
            return added

    def change_roadmap_links(self, change_ids: Iterable[str] | None = None) -> list[Row]:
        """(change_id, item_id, release_id, release_status) of every link, or of the links
        of ``change_ids``: what a delivery tells its OEM and what marks an item shipped."""
        link, change = t.change_roadmap_items.c, t.release_changes.c
        query = (
            select(link.change_id, link.item_id, change.release_id, t.releases.c.status.label("release_status"))
            .join(t.release_changes, change.change_id == link.change_id)
            .join(t.releases, t.releases.c.id == change.release_id)
            .order_by(link.item_id, change.release_id, link.change_id)
        )
        if change_ids is not None:
            query = query.where(link.change_id.in_(list(change_ids)))
        return self._all(query)

    def oems_asking_for_items(self, item_ids: Iterable[str], oem_id: str | None = None) -> list[Row]:
        """(oem_id, item_id) pairs of feedback staff linked to ``item_ids``, one per pair,
        restricted to ``oem_id`` when given (a delivery looks up its own OEM only)."""
        feedback = t.feedback.c
        query = (
            select(feedback.oem_id, feedback.item_id)
            .where(feedback.item_id.in_(list(item_ids)))
            .distinct()
            .order_by(feedback.oem_id, feedback.item_id)
        )
        return self._all(where_given(query, (feedback.oem_id, oem_id)))

    # -- roadmap snapshots -------------------------------------------------------------
    def save_roadmap_snapshot(
        self,
        *,
        horizon: list[str],
        items: list[dict],
        changes: dict,
        run_id: str | None,
        candidates: list[dict] | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                t.roadmap_snapshots.insert().values(
                    horizon=horizon,
                    items=items,
                    changes=changes,
                    run_id=run_id,
                    candidates=candidates,
                    created_at=utc_now(),
                )
            )
            return result.inserted_primary_key[0]

    def latest_roadmap_snapshot(self) -> Row | None:
        snapshots = t.roadmap_snapshots.c
        return self._first(select(t.roadmap_snapshots).order_by(snapshots.id.desc()).limit(1))

    def roadmap_snapshot_for_run(self, run_id: str) -> Row | None:
        snapshots = t.roadmap_snapshots.c
        query = select(t.roadmap_snapshots).where(snapshots.run_id == run_id).order_by(snapshots.id.desc()).limit(1)
        return self._first(query)

    def roadmap_snapshot(self, snapshot_id: int) -> Row | None:
        return self._first(select(t.roadmap_snapshots).where(t.roadmap_snapshots.c.id == snapshot_id))
