"""House rules every release-train DAG follows: owner, retries and the tag vocabulary.
``tests/dags/test_dag_integrity.py`` checks each DAG against them."""

from __future__ import annotations

import datetime as dt
import re

OWNER = "release-engineering"

TAGS = frozenset({"release-train", "acceptance", "delivery", "roadmap", "ops", "oem"})
# tags that carry a value: the OEM a DAG serves and its tier
TAG_PATTERNS = (re.compile(r"^oem:[a-z][a-z0-9_]+$"), re.compile(r"^tier:(gold|silver|bronze)$"))


def default_args(**overrides) -> dict:
    """Retries with backoff for the transient failures of remote systems; a task that
    must not be retried says so itself (``retries=0``)."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        **overrides,
    }


def is_known_tag(tag: str) -> bool:
    return tag in TAGS or any(p.match(tag) for p in TAG_PATTERNS)
