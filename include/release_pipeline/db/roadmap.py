"""What OEMs ask for and what the vendor plans: the only SQL for ``feedback``,
``feedback_requests``, ``planned_items`` and ``roadmap_snapshots``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pendulum
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, utc_now
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
        if oem_id is not None:
            query = query.where(feedback.oem_id == oem_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def feedback_item(self, feedback_id: int) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.feedback).where(t.feedback.c.id == feedback_id)).first()

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
        with self.engine.connect() as conn:
            return conn.execute(query).first()

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
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.planned_items).order_by(t.planned_items.c.id)))

    def planned_item(self, item_id: str) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.planned_items).where(t.planned_items.c.id == item_id)).first()

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
        with self.engine.connect() as conn:
            return conn.execute(select(t.roadmap_snapshots).order_by(snapshots.id.desc()).limit(1)).first()

    def roadmap_snapshot_for_run(self, run_id: str) -> Row | None:
        snapshots = t.roadmap_snapshots.c
        query = select(t.roadmap_snapshots).where(snapshots.run_id == run_id).order_by(snapshots.id.desc()).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def roadmap_snapshot(self, snapshot_id: int) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.roadmap_snapshots).where(t.roadmap_snapshots.c.id == snapshot_id)).first()
