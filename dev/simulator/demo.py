"""Demo content for ``make up``: a change feed with a few weeks of plausible merges."""

from __future__ import annotations

import pendulum

from release_pipeline.release_calendar import load_calendar

_CHANGES = [
    (
        "feature",
        "connectors",
        "Salesforce Bulk API 2.0 connector",
        "Move millions of records with the bulk API.",
        False,
    ),
    ("improvement", "mapper", "Faster data mapper previews", "Previews render 3x faster for large payloads.", False),
    (
        "fix",
        "scheduler",
        "Cron flows no longer skip the DST hour",
        "Flows scheduled at 02:30 ran twice or never.",
        False,
    ),
    ("component", "runtime", "Runtime on Java 21", "The integration runtime moves to Java 21.", True),
    ("feature", "api-gateway", "OAuth 2.1 client credentials", "Expose flows behind OAuth 2.1.", False),
    ("fix", "monitoring", "Alert e-mails show the flow name", "Alerts named the flow id only.", False),
    (
        "improvement",
        "connectors",
        "SFTP connector resumes uploads",
        "Interrupted uploads resume where they stopped.",
        False,
    ),
    ("feature", "mapper", "JSONata expressions in the mapper", "Transform fields with JSONata.", False),
    ("fix", "api-gateway", "Rate limits apply per client", "Limits were shared by all clients of a tenant.", False),
    ("improvement", "monitoring", "Flow run history kept 90 days", "History was kept 30 days.", False),
    (
        "component",
        "connectors",
        "SAP connector 4.0",
        "The SAP connector moves to RFC SDK 7.5; old BAPI mode removed.",
        True,
    ),
    ("feature", "runtime", "Secrets from HashiCorp Vault", "Flows read secrets from Vault at run time.", False),
]


def demo_changes(now: pendulum.DateTime | None = None, releases_back: int = 4) -> list[dict]:
    """Three changes merged in each of the last ``releases_back`` release intervals and
    the current one, so every demo release has something to ship."""
    calendar = load_calendar()
    now = now or pendulum.now("UTC")
    current = calendar.release_at(now)
    changes = []
    templates = iter(_CHANGES * 4)
    for index in range(current.index - releases_back + 1, current.index + 2):
        start, end = calendar.release(index - 1).at, min(calendar.release(index).at, now)
        span = (end - start).total_seconds()
        for position in range(3):
            kind, component, title, description, breaking = next(templates)
            merged = start.add(seconds=int(span * (position + 1) / 4))
            changes.append(
                {
                    "id": f"CHG-{1000 + len(changes)}",
                    "type": kind,
                    "component": component,
                    "title": title,
                    "description": description,
                    "breaking": breaking,
                    "merged_at": merged.in_timezone("UTC").isoformat(),
                }
            )
    return changes
