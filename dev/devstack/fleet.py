"""Generated OEM fleets: a copy of ``config/`` whose ``oems.yaml`` holds N OEMs, for the
benchmarks (parse time, many gates, install fan-out) that need more OEMs than the demo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from devstack.airflow_env import REPO

TIERS = ("gold", "silver", "bronze")
STRATEGIES = ("ava", "oem")
TIMEZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tokyo")
ALWAYS_OPEN = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}


def fleet_oem_ids(count: int) -> list[str]:
    return [f"oem{n:04d}" for n in range(count)]


def write_fleet_config(target: Path, count: int) -> Path:
    """``target`` becomes a config dir like the repository's, with ``count`` enabled OEMs
    of varied tiers, strategies and timezones whose maintenance windows are always open
    and no freeze windows (so nothing but the thing measured makes a run wait)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("vendor.yaml", "roadmap.yaml"):
        shutil.copy(REPO / "config" / name, target / name)
    calendar = yaml.safe_load((REPO / "config" / "calendar.yaml").read_text())
    (target / "calendar.yaml").write_text(yaml.safe_dump({**calendar, "freeze_windows": []}, sort_keys=False))
    oems = [
        {
            "id": oem_id,
            "display_name": f"OEM {n} Ltd",
            "brand_name": f"Brand {n} Connect",
            "timezone": TIMEZONES[n % len(TIMEZONES)],
            "tier": TIERS[n % len(TIERS)],
            "docs_strategy": STRATEGIES[n % len(STRATEGIES)],
            "feedback_cadence_weeks": 1 + n % 8,
            "maintenance_window": ALWAYS_OPEN,
            "acceptance_url": f"https://acceptance.{oem_id}.example",
            "docs_url": f"https://docs.{oem_id}.example",
        }
        for n, oem_id in enumerate(fleet_oem_ids(count))
    ]
    (target / "oems.yaml").write_text(yaml.safe_dump({"oems": oems}, sort_keys=False))
    return target


def seed_deployed_release(repo, release_id: str, oem_ids: list[str], *, changes: int = 2) -> list[str]:
    """Record ``release_id`` with ``changes`` fixes as deployed to the vendor production,
    its sign-off asked of every OEM in ``oem_ids``, as production_release leaves it;
    returns the change ids."""
    from release_pipeline.models import Change, ChangeType, ReleaseStatus
    from release_pipeline.release_calendar import load_calendar

    train = load_calendar()
    release = train.release_by_id(release_id)
    recorded = [
        Change(f"CHG-{release_id}-{n}", ChangeType.FIX, "runtime", f"Fix {n}", "Fixed.", False, release.at, release_id)
        for n in range(changes)
    ]
    repo.record_release(
        release, recorded, changes_since=train.previous(release).at, changes_until=release.at, actor="seed"
    )
    repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="seed")
    repo.request_approvals(release_id, oem_ids)
    return [change.id for change in recorded]


def approve_all(repo, oem_id: str, change_ids: list[str], *, actor: str = "seed") -> None:
    from release_pipeline.models import Decision

    for change_id in change_ids:
        repo.record_decision(oem_id=oem_id, change_id=change_id, decision=Decision.APPROVED, actor=actor, channel="cli")
