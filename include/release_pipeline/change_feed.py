"""Reading the change feed's answer: the changes merged since the previous release.

A malformed answer is refused as a whole, naming the change and the field, so a
release is never cut from half a feed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import pendulum
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from release_pipeline.config_loading import did_you_mean
from release_pipeline.models import Change, ChangeType
from release_pipeline.roadmap import ITEM_ID_PATTERN


class ChangeFeedError(ValueError):
    """The change feed answered something the release train cannot use."""


class _FeedChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    type: str
    component: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=300)
    description: str = ""
    breaking: bool = False
    merged_at: Any
    # the roadmap items this change delivers; whether they exist is checked where the
    # roadmap is known (:func:`release_pipeline.roadmap.check_item_ids`)
    # the change this one reverts (a revert and its change, both unshipped, cancel out)
    reverts: str | None = Field(default=None, min_length=1, max_length=64)
    roadmap_items: list[Annotated[str, StringConstraints(pattern=ITEM_ID_PATTERN)]] = Field(
        default_factory=list, max_length=20
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = [t.value for t in ChangeType]
        if value not in known:
            raise ValueError(f"unknown change type {value!r}{did_you_mean(value, known)}; expected one of {known}")
        return value

    @field_validator("merged_at")
    @classmethod
    def _aware_timestamp(cls, value: Any) -> pendulum.DateTime:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} needs a timezone")
        return pendulum.instance(moment)


def parse_changes(body: str | bytes) -> list[Change]:
    """The changes of a feed answer ``{"changes": [...]}``; raises :class:`ChangeFeedError`."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChangeFeedError(f"change feed answered invalid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("changes"), list):
        raise ChangeFeedError('change feed answer has no "changes" list')
    changes, problems, seen = [], [], set()
    for position, raw in enumerate(document["changes"], start=1):
        name = f"change {raw.get('id')!r}" if isinstance(raw, dict) and raw.get("id") else f"change #{position}"
        if not isinstance(raw, dict):
            problems.append(f"{name}: expected an object, got {type(raw).__name__}")
            continue
        try:
            parsed = _FeedChange.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "(change)"
                message = "is required but missing" if error["type"] == "missing" else error["msg"]
                problems.append(f"{name}, field '{field}': {message.removeprefix('Value error, ')}")
            continue
        if parsed.id in seen:
            problems.append(f"{name}: listed twice")
            continue
        seen.add(parsed.id)
        changes.append(
            Change(
                id=parsed.id,
                type=ChangeType(parsed.type),
                component=parsed.component,
                title=parsed.title,
                description=parsed.description,
                breaking=parsed.breaking,
                merged_at=parsed.merged_at,
                roadmap_items=tuple(dict.fromkeys(parsed.roadmap_items)),
                reverts=parsed.reverts,
            )
        )
    if problems:
        raise ChangeFeedError("change feed answer refused: " + "; ".join(problems))
    return changes
