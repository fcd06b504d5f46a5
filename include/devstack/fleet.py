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
    (so nothing but the thing measured makes a run wait)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("calendar.yaml", "vendor.yaml", "roadmap.yaml"):
        shutil.copy(REPO / "config" / name, target / name)
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
        }
        for n, oem_id in enumerate(fleet_oem_ids(count))
    ]
    (target / "oems.yaml").write_text(yaml.safe_dump({"oems": oems}, sort_keys=False))
    return target
