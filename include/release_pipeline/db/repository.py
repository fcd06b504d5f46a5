"""The release database, on SQLite and PostgreSQL alike: one facade over the
aggregate stores, for callers that need several of them.

Each aggregate's SQL lives in its own module, the only one that writes its tables:

- ``releases``: releases, their changes and history;
- ``signoff``: sign-off requests and decisions, and the approval gate's queries;
- ``deliveries``: deliveries, installed versions, instance locks;
- ``ledger``: the side-effect ledger, publications, held sends;
- ``roadmap``: feedback, planned items, the items changes deliver, roadmap snapshots;
- ``tokens``: portal tokens;
- ``calendar``: what each event of an OEM's install calendar last said.
- ``waves``: the halt and resume history of releases (rollout waves).
- ``rollbacks``: regression reports and rollback requests (with their history).
"""

from __future__ import annotations

from release_pipeline.db.calendar import CalendarStore
from release_pipeline.db.deliveries import DeliveryStore
from release_pipeline.db.ledger import LedgerStore
from release_pipeline.db.releases import ReleaseStore
from release_pipeline.db.roadmap import RoadmapStore
from release_pipeline.db.rollbacks import RollbackStore
from release_pipeline.db.signoff import SignoffStore
from release_pipeline.db.tokens import TokenStore
from release_pipeline.db.waves import WaveStore


class ReleaseRepository(
    ReleaseStore,
    SignoffStore,
    DeliveryStore,
    LedgerStore,
    RoadmapStore,
    TokenStore,
    CalendarStore,
    WaveStore,
    RollbackStore,
):
    """Every aggregate store on one engine."""

    @classmethod
    def from_url(cls, url: str) -> ReleaseRepository:
        from release_pipeline.db import connect

        return cls(connect(url))
