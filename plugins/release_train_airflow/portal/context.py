"""What the portal reads besides the request: the release database and the config."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pendulum

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.notes import Guard
from release_pipeline.registry import Registry, load_registry
from release_pipeline.release_calendar import ReleaseCalendar, load_calendar
from release_pipeline.roadmap import RoadmapConfig, load_roadmap_config
from release_pipeline.vendor import VendorConfig, load_vendor
from release_train_airflow.portal.ratelimit import SignInLimiter

# config edits (a new OEM) reach a running api-server within this many seconds
CONFIG_TTL = 60.0


@dataclass
class Portal:
    """Resolved lazily: building the app (at plugin import, in every Airflow process)
    must not touch the database or read the config."""

    repository: Callable[[], ReleaseRepository]
    load_registry: Callable[[], Registry] = load_registry
    load_vendor: Callable[[], VendorConfig] = load_vendor
    load_calendar: Callable[[], ReleaseCalendar] = load_calendar
    sign_in_limiter: SignInLimiter = field(default_factory=SignInLimiter)
    load_roadmap_config: Callable[[], RoadmapConfig] = load_roadmap_config
    now: Callable[[], pendulum.DateTime] = lambda: pendulum.now("UTC")  # tests pin it
    # alert_vendor(subject, lines, *, key, repo): None (the portal as deployed): the portal holds
    # no channel secrets (docs/portal-security.md), so the DAG regression_alerts sends a
    # report's alert within a minute; a test or a trusted host may alert from the request
    alert_vendor: Callable[..., None] | None = None
    _cache: dict[str, tuple[float, object]] = field(default_factory=dict)

    def _cached(self, name: str, load: Callable[[], object]):
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is None or now - hit[0] > CONFIG_TTL:
            hit = (now, load())
            self._cache[name] = hit
        return hit[1]

    def registry(self) -> Registry:
        return self._cached("registry", self.load_registry)

    def vendor(self) -> VendorConfig:
        return self._cached("vendor", self.load_vendor)

    def calendar(self) -> ReleaseCalendar:
        return self._cached("calendar", self.load_calendar)

    def roadmap_config(self) -> RoadmapConfig:
        return self._cached("roadmap_config", self.load_roadmap_config)

    def guard(self, oem_id: str | None) -> Guard:
        """The guard of what ``oem_id`` may read; None (no one signed in): nobody's names at all."""
        if oem_id is None:
            return self._cached("guard:", lambda: Guard.for_anyone(self.registry(), self.vendor()))
        return self._cached(
            f"guard:{oem_id}", lambda: Guard.for_oem(self.registry().get(oem_id), self.registry(), self.vendor())
        )
