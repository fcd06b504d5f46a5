"""Roadmap prioritisation: OEM feedback and the vendor's own plan, ranked for the next
two delivery cycles (about two months) with a score anyone can recompute by hand.

The horizon is the next two OEM delivery cycles whose installed release is not cut
yet (:func:`roadmap_horizon`); each item shows the release it is planned for (the
installed release of the cycle its target release belongs to), or none: "not yet
planned".

The score of an item is the sum, over the OEMs asking for it, of that OEM's strongest
ask::

    category weight (required 3, suggested 1)
  x tier weight     (gold 3, silver 2, bronze 1)
  x recency         (0.5 ** (age in weeks / 13): an ask loses half its weight a quarter)

Taking each OEM's strongest ask (not the sum of its asks) makes the number of OEMs
count, not how often one of them repeats itself; the recency factor keeps a fresh ask
from being drowned by a pile of old ones. Asks older than a year, or recorded after
the moment the roadmap is computed for, are left out, so a rerun for the same moment
gives the same ranking. Ties go to more OEMs, then the newest ask, then items planned
for a release, then the title.

Only the demand categories (required/suggested functionality or component) make
items; the others (general feedback, usage experience, future projects, use cases)
are ingested and counted for the vendor's product managers, but rank nothing.

Roadmap items are the vendor's words. Every item comes from ``config/roadmap.yaml`` or
was published by staff (``release-train roadmap publish``): a title and a public
description staff wrote or accepted, under an id that is never made from an OEM's
text. An ask counts for the item staff attached it to (publish, merge), else for the
item whose title or one of whose aliases equals its own (normalised). An ask on no
item stays its OEM's own: other OEMs never see it, they see only how many OEMs ask
for each published item. Staff review such asks as *candidates*.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from release_pipeline.config_loading import (
    ConfigError,
    InvalidConfig,
    config_dir,
    load_located_yaml,
    validation_errors,
)
from release_pipeline.models import FeedbackCategory
from release_pipeline.notes import Audience, Rendered, render
from release_pipeline.notes.whitelabel import Whitelabel
from release_pipeline.release_calendar import RELEASE_ID_PATTERN, ReleaseCalendar, UnknownRelease

Kind = Literal["functionality", "component"]

REQUIRED = frozenset({FeedbackCategory.REQUIRED_FUNCTIONALITY, FeedbackCategory.REQUIRED_COMPONENT})
SUGGESTED = frozenset({FeedbackCategory.SUGGESTED_FUNCTIONALITY, FeedbackCategory.SUGGESTED_COMPONENT})
COMPONENT_CATEGORIES = frozenset({FeedbackCategory.REQUIRED_COMPONENT, FeedbackCategory.SUGGESTED_COMPONENT})
DEMAND = REQUIRED | SUGGESTED
CATEGORY_WEIGHTS = {**dict.fromkeys(REQUIRED, 3.0), **dict.fromkeys(SUGGESTED, 1.0)}
TIER_WEIGHTS = {"gold": 3.0, "silver": 2.0, "bronze": 1.0}
CATEGORY_LABELS = {
    FeedbackCategory.GENERAL: "General feedback",
    FeedbackCategory.SUGGESTED_COMPONENT: "Suggested component improvement",
    FeedbackCategory.SUGGESTED_FUNCTIONALITY: "Suggested functionality improvement",
    FeedbackCategory.REQUIRED_FUNCTIONALITY: "Required functionality",
    FeedbackCategory.REQUIRED_COMPONENT: "Required component",
    FeedbackCategory.USAGE_EXPERIENCE: "Usage experience",
    FeedbackCategory.FUTURE_PROJECTS: "Future / ongoing projects",
    FeedbackCategory.USE_CASES: "Use cases",
}
HALF_LIFE_WEEKS = 13
LOOKBACK = dt.timedelta(weeks=52)
HORIZON_CYCLES = 2  # delivery cycles of four weeks: about two months
ITEM_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,79}$"
DEFAULT_FEEDBACK_PER_DAY = 20
FEEDBACK_WINDOW = dt.timedelta(hours=24)


# -- the horizon: the next delivery cycles ------------------------------------------------
@dataclass(frozen=True)
class PlanningCycle:
    """A delivery cycle the roadmap plans for: the releases cut in it and the one that
    OEM instances install a week after the last of them."""

    release_id: str
    releases: tuple[str, ...]
    install_at: pendulum.DateTime


@dataclass(frozen=True)
class Horizon:
    cycles: tuple[PlanningCycle, ...]
    calendar: ReleaseCalendar

    @property
    def release_ids(self) -> list[str]:
        """The installed release of each cycle: what the roadmap is "for"."""
        return [c.release_id for c in self.cycles]

    @property
    def first_release_id(self) -> str:
        return self.cycles[0].releases[0]

    @property
    def last_release_id(self) -> str:
        return self.cycles[-1].release_id

    def planned_for(self, target_release_id: str | None) -> str | None:
        """The release that brings ``target_release_id`` to OEM instances: the installed
        release of its delivery cycle (a target that is no release of the calendar is
        taken as it is)."""
        if target_release_id is None:
            return None
        try:
            return self.calendar.delivery_cycle_by_release_id(target_release_id).release.id
        except UnknownRelease:
            return target_release_id


def roadmap_horizon(calendar: ReleaseCalendar, moment: dt.datetime, cycles: int = HORIZON_CYCLES) -> Horizon:
    """The next ``cycles`` delivery cycles whose installed release is not cut yet at
    ``moment``: a release already cut cannot take new work, so the current cycle (its
    release out, its install day perhaps still ahead) is behind the horizon."""
    cycle = calendar.delivery_cycle_at(moment)
    planned = []
    for _ in range(cycles):
        cycle = calendar.next_cycle(cycle)
        planned.append(PlanningCycle(cycle.release.id, tuple(r.id for r in cycle.window.releases), cycle.install_at))
    return Horizon(tuple(planned), calendar)


# -- config/roadmap.yaml ----------------------------------------------------------------
class PlannedItemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ITEM_ID_PATTERN)
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=4000)
    kind: Kind = "functionality"
    component: str | None = None
    target_release: str | None = None
    aliases: tuple[str, ...] = ()
    detail: str | None = None

    @field_validator("target_release", mode="before")
    @classmethod
    def _release_id(cls, value: object) -> object:
        # YAML reads 2026.30 as the float 2026.3: ask for quotes instead of guessing
        if value is not None and not (isinstance(value, str) and RELEASE_ID_PATTERN.match(value)):
            raise ValueError('expected a quoted release id such as "2026.24"')
        return value


class RoadmapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_per_oem_per_day: int = Field(DEFAULT_FEEDBACK_PER_DAY, ge=1, le=1000)
    planned: tuple[PlannedItemConfig, ...] = ()


def load_roadmap_config(path: Path | None = None) -> RoadmapConfig:
    """Read and validate ``config/roadmap.yaml``; raises :class:`InvalidConfig`."""
    located = load_located_yaml(path or config_dir() / "roadmap.yaml")
    try:
        config = RoadmapConfig.model_validate(located.data or {})
    except ValidationError as exc:
        raise InvalidConfig(validation_errors(exc, RoadmapConfig, located, (), "roadmap")) from None
    seen: set[str] = set()
    for index, item in enumerate(config.planned):
        if item.id in seen:
            line = located.line_of(("planned", index, "id"))
            raise InvalidConfig([ConfigError(located.file, line, f"planned item '{item.id}'", "id", "duplicate id")])
        seen.add(item.id)
    return config


# -- inputs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedbackEntry:
    id: int
    oem_id: str
    category: FeedbackCategory
    title: str
    created_at: dt.datetime
    component: str | None = None
    item_id: str | None = None  # the published item staff attached it to

    @classmethod
    def from_row(cls, row) -> FeedbackEntry:
        return cls(
            row.id,
            row.oem_id,
            FeedbackCategory(row.category),
            row.title,
            row.created_at,
            row.component,
            getattr(row, "item_id", None),
        )


def in_vendor_terms(title: str, oem_brand: str, vendor_product: str) -> str:
    """An OEM names the platform by its own brand; matching an ask against the vendor's
    item titles and aliases uses the vendor's product name instead."""
    return Whitelabel((oem_brand,), vendor_product).apply(title)


@dataclass(frozen=True)
class PlannedItem:
    """A roadmap item: the vendor's words, from config/roadmap.yaml or published by staff."""

    id: str
    title: str
    kind: str = "functionality"
    component: str | None = None
    target_release_id: str | None = None
    aliases: tuple[str, ...] = ()
    source: str = "config"
    description: str | None = None
    hidden: bool = False


def planned_items(config: RoadmapConfig, rows: Iterable) -> list[PlannedItem]:
    """The vendor's items from the config file and the ``planned_items`` table, one item
    per id: the table wins on a clash (it is what staff changed last; a row may only
    hide a config item)."""
    items = {
        c.id: PlannedItem(
            c.id, c.title, c.kind, c.component, c.target_release, c.aliases, "config", c.description, False
        )
        for c in config.planned
    }
    for row in rows:
        base = items.get(row.id)
        items[row.id] = PlannedItem(
            row.id,
            row.title,
            getattr(row, "kind", None) or (base.kind if base else "functionality"),
            row.component if row.component is not None else (base.component if base else None),
            row.target_release_id,
            base.aliases if base else (),
            "database",
            getattr(row, "description", None) or (base.description if base else None),
            getattr(row, "hidden_at", None) is not None,
        )
    return [items[key] for key in sorted(items)]


def normalise(title: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", title.lower()).split())


# -- prioritisation ------------------------------------------------------------------------
def recency(created_at: dt.datetime, as_of: dt.datetime) -> float:
    age_weeks = max((as_of - created_at).total_seconds(), 0) / (7 * 24 * 3600)
    return 0.5 ** (age_weeks / HALF_LIFE_WEEKS)


def ask_weight(entry: FeedbackEntry, tier: str, as_of: dt.datetime) -> float:
    return CATEGORY_WEIGHTS[entry.category] * TIER_WEIGHTS[tier] * recency(entry.created_at, as_of)


def considered(feedback: Iterable[FeedbackEntry], as_of: dt.datetime) -> list[FeedbackEntry]:
    """The feedback a roadmap computed at ``as_of`` looks at."""
    return [f for f in feedback if as_of - LOOKBACK < f.created_at <= as_of]


def assign(
    feedback: Iterable[FeedbackEntry], planned: Sequence[PlannedItem], tiers: dict[str, str], as_of: dt.datetime
) -> tuple[dict[str, list[FeedbackEntry]], list[FeedbackEntry]]:
    """The demand asks per item id, and the asks on no item (for staff to review).

    An ask counts for the item staff attached it to (publish or merge), else for the
    visible item whose title or alias equals its own title (normalised). Nothing else
    makes an item: an ask nobody published stays the asking OEM's own.
    """
    by_id = {p.id: p for p in planned}
    by_alias: dict[str, PlannedItem] = {}
    for item in planned:
        if not item.hidden:
            for name in (item.title, *item.aliases):
                by_alias.setdefault(normalise(name), item)
    asks: dict[str, list[FeedbackEntry]] = {}
    unassigned = []
    for entry in sorted(considered(feedback, pendulum.instance(as_of)), key=lambda f: (f.created_at, f.id)):
        if entry.category not in DEMAND or entry.oem_id not in tiers:
            continue
        if entry.item_id is not None and entry.item_id in by_id:
            key = entry.item_id
        elif match := by_alias.get(normalise(entry.title)):
            key = match.id
        else:
            unassigned.append(entry)
            continue
        asks.setdefault(key, []).append(entry)
    return asks, unassigned


def prioritise(
    feedback: Iterable[FeedbackEntry],
    planned: Sequence[PlannedItem],
    tiers: dict[str, str],
    horizon: Horizon,
    as_of: dt.datetime,
    shipped: Mapping[str, str] | None = None,
) -> list[dict]:
    """The ranked roadmap for the delivery cycles of ``horizon`` as JSON-ready dicts:
    the vendor's visible items only, with the asks counted towards them.

    ``tiers`` maps each OEM of the registry to its tier; feedback of an OEM no longer
    in the registry is left out. Items are listed when they target a release of the
    horizon (or none); one planned for later only when OEMs ask for it, one planned
    for a release cut before the horizon not at all. An item in ``shipped`` (item id
    -> release, see :func:`shipped_items`) has left the ranking: there is nothing
    left to prioritise.
    """
    shipped = shipped or {}
    as_of = pendulum.instance(as_of)
    first, last = horizon.first_release_id, horizon.last_release_id
    asks, _ = assign(feedback, planned, tiers, as_of)
    items = []
    for plan in sorted((p for p in planned if not p.hidden and p.id not in shipped), key=lambda p: p.id):
        entries = asks.get(plan.id, [])
        target = plan.target_release_id
        if target is not None and (target < first or (target > last and not entries)):
            continue
        items.append(_item(plan, entries, tiers, as_of, horizon.planned_for(target)))
    items.sort(key=_rank_key)
    for rank, item in enumerate(items, start=1):
        item["rank"] = rank
    return items


def candidates(
    feedback: Iterable[FeedbackEntry], planned: Sequence[PlannedItem], tiers: dict[str, str], as_of: dt.datetime
) -> list[dict]:
    """Asks on no published item, grouped by normalised title, strongest first: what
    staff review with ``release-train roadmap list``. Staff only: never in an OEM's view.
    The id names the first ask (``ask-<feedback id>``), never its text."""
    as_of = pendulum.instance(as_of)
    _, unassigned = assign(feedback, planned, tiers, as_of)
    groups: dict[str, list[FeedbackEntry]] = {}
    for entry in unassigned:
        groups.setdefault(normalise(entry.title), []).append(entry)
    result = []
    for entries in groups.values():
        strongest: dict[str, float] = {}
        for entry in entries:
            weight = ask_weight(entry, tiers[entry.oem_id], as_of)
            strongest[entry.oem_id] = max(weight, strongest.get(entry.oem_id, 0.0))
        result.append(
            {
                "id": f"ask-{entries[0].id}",
                "title": entries[0].title,
                "oems": sorted(strongest),
                "feedback_ids": sorted(e.id for e in entries),
                "score": round(sum(strongest.values()), 3),
                "newest_ask": pendulum.instance(max(e.created_at for e in entries)).to_date_string(),
            }
        )
    return sorted(result, key=lambda c: (-c["score"], -len(c["oems"]), c["feedback_ids"][0]))


def _item(plan: PlannedItem, entries, tiers, as_of, planned_for) -> dict:
    strongest: dict[str, tuple[float, FeedbackEntry]] = {}
    required_by, suggested_by = set(), set()
    for entry in entries:
        weight = ask_weight(entry, tiers[entry.oem_id], as_of)
        (required_by if entry.category in REQUIRED else suggested_by).add(entry.oem_id)
        if entry.oem_id not in strongest or weight > strongest[entry.oem_id][0]:
            strongest[entry.oem_id] = (weight, entry)
    suggested_by -= required_by  # an OEM that requires it is counted as requiring it
    contributions = [
        {
            "oem_id": oem,
            "tier": tiers[oem],
            "category": str(entry.category),
            "feedback_id": entry.id,
            "asked_at": pendulum.instance(entry.created_at).to_iso8601_string(),
            "weight": round(weight, 3),
        }
        for oem, (weight, entry) in sorted(strongest.items())
    ]
    score = round(sum(weight for weight, _ in strongest.values()), 3)
    newest = max((e.created_at for e in entries), default=None)
    planned = plan.target_release_id is not None
    return {
        "id": plan.id,
        "rank": 0,
        "public": True,  # the vendor's words: the only kind of item an OEM is shown
        "title": plan.title,
        "description": plan.description,
        "kind": plan.kind,
        "component": plan.component,  # the vendor's, never an ask's
        "score": score,
        "planned": planned,
        "planned_source": plan.source,
        "target_release_id": plan.target_release_id,
        "planned_for": planned_for,
        "oems": sorted(strongest),
        "asked_by": len(strongest),
        "required_by": len(required_by),
        "suggested_by": len(suggested_by),
        "newest_ask": pendulum.instance(newest).to_date_string() if newest else None,
        "feedback_ids": sorted(e.id for e in entries),
        "contributions": contributions,
        "reason": _reason(required_by, suggested_by, tiers, newest, planned_for, score, named=True),
        "public_reason": _reason(required_by, suggested_by, tiers, newest, planned_for, score, named=False),
    }


def _reason(required_by, suggested_by, tiers, newest, planned_for, score, *, named: bool) -> str:
    def who(oems: set[str]) -> str:
        noun = "OEM" if named else "customer"
        text = f"{len(oems)} {noun}{'s' if len(oems) != 1 else ''}"
        if named:  # the vendor's copy says which tiers; OEMs never learn about each other
            text += " (" + ", ".join(sorted((tiers[o] for o in oems), key=list(TIER_WEIGHTS).index)) + ")"
        return text

    parts = []
    if required_by:
        parts.append(f"required by {who(required_by)}")
    if suggested_by:
        parts.append(f"suggested by {who(suggested_by)}")
    if newest is not None:
        parts.append(f"newest ask {pendulum.instance(newest).to_date_string()}")
    parts.append(f"planned for {planned_for}" if planned_for else "not yet planned")
    if not (required_by or suggested_by):
        parts.append("no customer asked for it yet" if not named else "no OEM asked for it yet")
    if named:
        parts.append(f"score {score:g}")
    return "; ".join(parts)


def _rank_key(item: dict):
    newest = item["newest_ask"]
    newest_first = -dt.date.fromisoformat(newest).toordinal() if newest else 1  # nobody asked: last
    return (-item["score"], -len(item["oems"]), newest_first, not item["planned"], item["title"], item["id"])


# -- from feedback to shipped -------------------------------------------------------------------
class UnknownRoadmapItems(ValueError):
    """A change names roadmap items that are on no roadmap."""

    def __init__(self, where: str, unknown: Sequence[str], known: Iterable[str]):
        self.unknown = list(unknown)
        listed = ", ".join(sorted(known)) or "none yet"
        super().__init__(
            f"{where}: unknown roadmap item(s) {', '.join(repr(i) for i in self.unknown)} "
            f"(items: {listed}; see `release-train roadmap list`)"
        )


def check_item_ids(where: str, item_ids: Iterable[str], planned: Sequence[PlannedItem]) -> None:
    """Raise :class:`UnknownRoadmapItems` naming every id of ``item_ids`` that is no item
    of config/roadmap.yaml or the database (``where`` names the change)."""
    known = {p.id for p in planned}
    if unknown := [i for i in dict.fromkeys(item_ids) if i not in known]:
        raise UnknownRoadmapItems(where, unknown, known)


def shipped_items(links: Iterable) -> dict[str, str]:
    """Item id -> the release that shipped it, from the change links
    (``repo.change_roadmap_links()``: change_id, item_id, release_id, release_status).

    An item is shipped once every change that delivers it is in production (its
    release deployed); its release is the newest of theirs, the one that completes it.
    """
    releases: dict[str, list[tuple[str, bool]]] = {}
    for link in links:
        releases.setdefault(link.item_id, []).append((link.release_id, link.release_status == "deployed"))
    return {
        item_id: max(release_id for release_id, _ in entries)
        for item_id, entries in sorted(releases.items())
        if all(deployed for _, deployed in entries)
    }


def asked_for(repo, oem_id: str, change_ids: Iterable[str], planned: Sequence[PlannedItem]) -> dict[str, list[dict]]:
    """Change id -> the visible roadmap items it delivers that ``oem_id``'s own feedback
    asked for (feedback staff linked to the item): what "you asked for this" names.

    Only the OEM's own asks are looked up, so nothing of another OEM's feedback can
    reach it; an item nobody of this OEM asked for is not mentioned at all."""
    links = repo.change_roadmap_links(list(change_ids))
    if not links:
        return {}
    visible = {p.id: p for p in planned if not p.hidden}
    mine = {row.item_id for row in repo.oems_asking_for_items({link.item_id for link in links}, oem_id=oem_id)}
    answer: dict[str, list[dict]] = {}
    for link in links:
        if link.item_id in mine and link.item_id in visible:
            answer.setdefault(link.change_id, []).append({"id": link.item_id, "title": visible[link.item_id].title})
    return answer


# -- what changed -----------------------------------------------------------------------------
def diff(previous: Sequence[dict] | None, current: Sequence[dict]) -> dict:
    """Items added, removed and moved (rank) since the previous snapshot, among the
    published items only (a snapshot from before items were the vendor's words may
    hold OEMs' own titles: they are never named)."""
    if previous is None:
        return {"first": True, "added": [_ref(i) for i in current if _public(i)], "removed": [], "moved": []}
    before = {i["id"]: i for i in previous if _public(i)}
    now = {i["id"]: i for i in current if _public(i)}
    return {
        "first": False,
        "added": [_ref(i) for i in now.values() if i["id"] not in before],
        "removed": [_ref(i) for i in before.values() if i["id"] not in now],
        "moved": [
            {**_ref(i), "from": before[i["id"]]["rank"], "to": i["rank"]}
            for i in now.values()
            if i["id"] in before and before[i["id"]]["rank"] != i["rank"]
        ],
    }


def _public(item: dict) -> bool:
    return item.get("public") is True


def _ref(item: dict) -> dict:
    return {"id": item["id"], "title": item["title"], "public": _public(item)}


def has_changes(changes: dict) -> bool:
    return bool(changes.get("first") or changes.get("added") or changes.get("removed") or changes.get("moved"))


def ingested(feedback: Iterable[FeedbackEntry], since: dt.datetime | None, as_of: dt.datetime) -> dict:
    """The feedback recorded in ``(since, as_of]``: ids and a count per category."""
    new = [f for f in feedback if (since is None or f.created_at > since) and f.created_at <= as_of]
    counts: dict[str, int] = {}
    for entry in new:
        counts[str(entry.category)] = counts.get(str(entry.category), 0) + 1
    return {"feedback_ids": sorted(f.id for f in new), "by_category": dict(sorted(counts.items()))}


# -- one snapshot: what the roadmap_planning DAG stores and every OEM's copy is made of ---------
@dataclass(frozen=True)
class Snapshot:
    horizon: list[str]
    items: list[dict]
    candidates: list[dict]
    changes: dict


def plan_roadmap(
    repo,
    *,
    registry,
    vendor,
    calendar: ReleaseCalendar,
    config: RoadmapConfig,
    moment: dt.datetime,
    previous=None,
) -> Snapshot:
    """Rank the roadmap at ``moment`` from the release database ``repo`` (feedback and
    staff's items), the registry, the vendor, the calendar and ``config/roadmap.yaml``;
    ``previous`` is the snapshot row to say what changed against."""
    moment = pendulum.instance(moment)
    feedback = [
        # an OEM names the platform by its brand: match the vendor's titles by theirs
        replace(entry, title=in_vendor_terms(entry.title, registry.oems[entry.oem_id].brand_name, vendor.product_name))
        for entry in (
            FeedbackEntry.from_row(row) for row in repo.feedback(since=moment - LOOKBACK) if row.oem_id in registry.oems
        )
    ]
    planned = planned_items(config, repo.planned_items())
    horizon = roadmap_horizon(calendar, moment)
    tiers = {o.id: o.tier for o in registry.oems.values()}
    shipped = shipped_items(repo.change_roadmap_links())
    items = prioritise(feedback, planned, tiers, horizon, moment, shipped)
    as_of = previous.changes.get("as_of") if previous is not None else None
    since = pendulum.parse(as_of) if as_of else None
    what_changed = diff(previous.items if previous is not None else None, items)
    what_changed["removed"] = [ref for ref in what_changed["removed"] if ref["id"] not in shipped]
    changes = {
        **what_changed,
        "shipped": shipped_list(feedback, planned, tiers, moment, shipped),
        "as_of": moment.to_iso8601_string(),
        "since": since.to_iso8601_string() if since else None,
        "ingested": ingested(feedback, since, moment),
    }
    return Snapshot(horizon.release_ids, items, candidates(feedback, planned, tiers, moment), changes)


def shipped_list(
    feedback: Iterable[FeedbackEntry],
    planned: Sequence[PlannedItem],
    tiers: dict[str, str],
    as_of: dt.datetime,
    shipped: Mapping[str, str],
) -> list[dict]:
    """The visible shipped items, newest release first, each marked with its release and
    the OEMs that asked for it (staff's copy; an OEM's view keeps only "yours")."""
    asks, _ = assign(feedback, planned, tiers, as_of)
    return sorted(
        (
            {
                "id": p.id,
                "title": p.title,
                "public": True,
                "release_id": shipped[p.id],
                "oems": sorted({e.oem_id for e in asks.get(p.id, [])}),
            }
            for p in planned
            if p.id in shipped and not p.hidden
        ),
        key=lambda i: (-int(i["release_id"].replace(".", "")), i["title"], i["id"]),
    )


# -- how much feedback an OEM may give -----------------------------------------------------------
class FeedbackLimitReached(ValueError):
    """An OEM gave as much feedback in the last day as it may."""

    def __init__(self, limit: int, retry_at: pendulum.DateTime):
        self.limit, self.retry_at = limit, retry_at
        super().__init__(
            f"your organisation has given {limit} feedback items in the last 24 hours, the most we take in a day: "
            f"please send more after {retry_at.format('YYYY-MM-DD HH:mm')} ({retry_at.timezone_name}), "
            "or combine your points into one"
        )


def check_feedback_allowance(recent: Sequence[dt.datetime], limit: int, now: dt.datetime) -> None:
    """Raise :class:`FeedbackLimitReached` when ``recent`` (the OEM's feedback times,
    any order) holds ``limit`` or more in the 24 hours up to ``now``. A rolling day:
    no burst at midnight, and the answer says when the next one is taken."""
    now = pendulum.instance(now)
    window = sorted(pendulum.instance(t) for t in recent if now - FEEDBACK_WINDOW < t <= now)
    if len(window) >= limit:
        raise FeedbackLimitReached(limit, window[len(window) - limit] + FEEDBACK_WINDOW)


# -- what an OEM sees ---------------------------------------------------------------------------
OEM_FIELDS = (
    "id",
    "title",
    "description",
    "kind",
    "component",
    "target_release_id",
    "planned_for",
    "asked_by",
    "public_reason",
)


def oem_view(items: Sequence[dict], changes: dict, oem_id: str) -> dict:
    """A snapshot as one OEM may see it: the vendor's published items only, another
    OEM's asks only as counts; no other OEM's name, tier, feedback id or text, no scores."""
    public = [item for item in items if _public(item)]
    return {
        "items": [
            {
                "rank": rank,
                **{k: item.get(k) for k in OEM_FIELDS},
                "asked_by": item.get("asked_by", len(item.get("oems", ()))),
                "yours": oem_id in item.get("oems", ()),
            }
            for rank, item in enumerate(sorted(public, key=lambda i: i["rank"]), start=1)
        ],
        "changes": {
            "first": bool(changes.get("first")),
            "added": [ref["title"] for ref in changes.get("added", []) if _public(ref)],
            "removed": [ref["title"] for ref in changes.get("removed", []) if _public(ref)],
            "moved": [
                {"title": m["title"], "from": m["from"], "to": m["to"]} for m in changes.get("moved", []) if _public(m)
            ],
        },
        "shipped": [
            {"id": i["id"], "title": i["title"], "release_id": i["release_id"], "yours": oem_id in i.get("oems", ())}
            for i in changes.get("shipped", [])
            if _public(i)
        ],
    }


def render_roadmap_update(
    audience: Audience, horizon: Sequence[str], items: Sequence[dict], changes: dict, *, portal_url: str
) -> Rendered:
    """The roadmap update an OEM receives, white-labelled (``audience`` is the OEM's).
    It is built from :func:`oem_view` only, and the Markdown template escapes every
    text (a link in an item's title arrives as text, never as a link)."""
    view = oem_view(items, changes, audience.key)
    return render(
        "roadmap_update",
        audience,
        subject=f"{audience.product} roadmap for the deliveries of {' and '.join(horizon)}",
        horizon=list(horizon),
        roadmap_url=portal_url + "roadmap",
        feedback_url=portal_url + "feedback",
        changed=has_changes(view["changes"]),
        **view,
    )


def render_feedback_request(
    audience: Audience, horizon: Sequence[str], cadence_weeks: int, *, portal_url: str
) -> Rendered:
    return render(
        "feedback_request",
        audience,
        subject=f"Your feedback on {audience.product}",
        horizon=list(horizon),
        cadence_weeks=cadence_weeks,
        categories=list(CATEGORY_LABELS.values()),
        roadmap_url=portal_url + "roadmap",
        feedback_url=portal_url + "feedback",
    )
