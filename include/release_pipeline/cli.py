"""``release-train``: the operator CLI of the release train.

The release database is the one in ``--db-url``, else ``$RELEASE_TRAIN_DB_URL``
(which ``make up`` writes into ``.airflow/env.sh`` beside the Airflow connection
``release_db`` that points at the same database).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pendulum
from sqlalchemy.exc import SQLAlchemyError

from release_pipeline import inputs
from release_pipeline.config_loading import InvalidConfig
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import Decision, FeedbackCategory, ReleaseDbError
from release_pipeline.registry import Oem, load_registry, ssh_host_key_problem
from release_pipeline.release_calendar import load_calendar
from release_pipeline.roadmap import load_roadmap_config
from release_pipeline.signoff import SignoffError
from release_pipeline.vendor import load_vendor, production_problems

DB_URL_ENV = "RELEASE_TRAIN_DB_URL"


class UsageError(Exception):
    """Bad arguments or state the operator can fix; printed without a traceback."""


def _check_inputs(args: argparse.Namespace, rules: dict[str, inputs.Rule]) -> None:
    """Refuse over-long values, control characters and blank required ones before
    anything is read or written; ``rules`` maps an argument's dest to its bounds."""
    for dest, rule in rules.items():
        value = getattr(args, dest, None)
        flag = "--" + dest.replace("_", "-")
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            try:
                rule.check(flag, item)
            except inputs.InvalidInput as exc:
                raise UsageError(str(exc)) from None


def _days(value: int) -> pendulum.Duration:
    from release_pipeline.tokens import MAX_VALIDITY

    if not 1 <= value <= MAX_VALIDITY.in_days():
        raise UsageError(f"--days: a token is valid for 1 to {MAX_VALIDITY.in_days()} days, not {value}")
    return pendulum.duration(days=value)


def _db_url(args: argparse.Namespace) -> str:
    url = args.db_url or os.environ.get(DB_URL_ENV)
    if not url:
        raise UsageError(f"no release database: pass --db-url or set {DB_URL_ENV} (`source .airflow/env.sh`)")
    return url


# check-config's exit status when the deployment itself is unfit (``--production``), as
# against 1 for config errors that leave only the broken OEMs out
UNFIT_FOR_PRODUCTION = 3


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate config/calendar.yaml, vendor.yaml, oems.yaml and roadmap.yaml (and, given the
    connections, that every enabled OEM's SSH connection pins a host key); non-zero exit on
    any error, ``UNFIT_FOR_PRODUCTION`` when ``--production`` finds the deployment unfit."""
    problems = []

    def loaded(load, name: str):
        """``config/<name>`` loaded, or None with its errors added to the problems."""
        try:
            return load(args.config_dir / name if args.config_dir else None)
        except InvalidConfig as exc:
            problems.extend(exc.errors)
            return None

    calendar = loaded(load_calendar, "calendar.yaml")
    vendor = loaded(load_vendor, "vendor.yaml")
    registry = loaded(load_registry, "oems.yaml")
    if registry is not None:
        problems.extend(registry.errors)  # the invalid OEMs, left out of an otherwise valid registry
    roadmap = loaded(load_roadmap_config, "roadmap.yaml")
    if registry and calendar:
        from release_pipeline.waves import wave_problems

        problems.extend(wave_problems(calendar, registry.enabled))
    if registry and vendor:
        from release_pipeline.notes.whitelabel import config_problems

        whitelabel_errors, warnings = config_problems(registry, vendor)
        problems.extend(whitelabel_errors)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if calendar:
        print(f"calendar: {calendar.description}")
    if registry:
        enabled = len(registry.enabled)
        print(
            f"OEMs: {len(registry.oems)} valid ({enabled} enabled), {len({e.entity for e in registry.errors})} invalid"
        )
    if roadmap:
        print(f"roadmap: {len(roadmap.planned)} vendor-planned item(s)")
    if registry and (args.connections or args.connections_env):
        pinning = ssh_pinning_problems(registry, _connections(args))
        for problem in pinning:
            print(f"error: {problem}", file=sys.stderr)
        print(f"SSH host keys: {len(registry.enabled) - len(pinning)} of {len(registry.enabled)} enabled OEMs pinned")
        problems.extend(pinning)
    if args.production:
        where = str(args.config_dir / "vendor.yaml") if args.config_dir else "config/vendor.yaml"
        unfit = production_problems(vendor, where) if vendor else [f"{where} is invalid (above)"]
        for problem in unfit:
            print(f"error: production: {problem}", file=sys.stderr)
        if unfit:
            return UNFIT_FOR_PRODUCTION
    return 1 if problems else 0


def _connections(args: argparse.Namespace) -> dict[str, dict]:
    """Airflow connections as the deployment defines them: a LocalFilesystemBackend JSON
    file (docker-compose's deploy/secrets/connections.json) and/or ``AIRFLOW_CONN_*``
    variables in JSON form (``make up``'s .airflow/env.sh); the file wins."""
    found: dict[str, dict] = {}
    if args.connections_env:
        for name, value in os.environ.items():
            if name.startswith("AIRFLOW_CONN_") and value.lstrip().startswith("{"):
                try:
                    found[name.removeprefix("AIRFLOW_CONN_").lower()] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{name}: not valid JSON: {exc}") from None
    if args.connections:
        try:
            data = json.loads(args.connections.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"--connections {args.connections}: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"--connections {args.connections}: expected a JSON object of connection id -> connection")
        found.update(data)
    return found


def ssh_pinning_problems(registry, connections: dict[str, dict]) -> list[str]:
    """Every enabled OEM whose SSH connection is absent or pins no valid host key."""
    problems = []
    for oem in registry.enabled:
        conn = connections.get(oem.connections.ssh)
        if not isinstance(conn, dict):
            problems.append(f"OEM {oem.id!r}: connection {oem.connections.ssh!r} is not defined")
        elif problem := ssh_host_key_problem(oem, conn.get("extra")):
            problems.append(problem)
    return problems


def _configure_check_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connections",
        type=Path,
        metavar="FILE",
        help="also check the Airflow connections in this JSON file (e.g. deploy/secrets/connections.json): "
        "every enabled OEM's SSH connection must pin a host key",
    )
    parser.add_argument(
        "--connections-env",
        action="store_true",
        help="the same for the AIRFLOW_CONN_* variables in JSON form (`source .airflow/env.sh`)",
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="the deployment serves OEMs (docker-compose's airflow-init): portal_url must be public https; "
        f"exit status {UNFIT_FOR_PRODUCTION} if not",
    )


def cmd_oems(args: argparse.Namespace) -> int:
    """List the OEMs of the registry."""
    registry = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None)
    rows = [
        {
            "id": o.id,
            "brand": o.brand_name,
            "tier": o.tier,
            "enabled": o.enabled,
            "docs": o.docs_strategy,
            "feedback_weeks": o.feedback_cadence_weeks,
            "timezone": o.timezone,
        }
        for o in registry.oems.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    for error in registry.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if registry.errors else 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or migrate the release database to the newest schema."""
    from release_pipeline.db import connect
    from release_pipeline.db.migrate import current_revision, upgrade

    engine = connect(_db_url(args))
    upgrade(engine)
    print(f"release database at revision {current_revision(engine)}")
    return 0


# -- portal tokens, feedback, sign-off on an OEM's behalf, status ----------------------------
def _repository(args: argparse.Namespace) -> ReleaseRepository:
    return ReleaseRepository.from_url(_db_url(args))


def _known_oem(args: argparse.Namespace, oem_id: str) -> Oem:
    try:
        return load_registry(args.config_dir / "oems.yaml" if args.config_dir else None).get(oem_id)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def _print_rows(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


def _when(moment) -> str:
    return moment.in_timezone("UTC").format("YYYY-MM-DD HH:mm") if moment else "-"


# a feed token's default validity is the longest: an expired subscription stops quietly, and
# the token reads dates only (docs/install-calendar.md)
PORTAL_DAYS, FEED_DAYS = 90, 366


def _feed_url(args: argparse.Namespace) -> str:
    from release_pipeline.vendor import load_vendor

    try:
        portal_url = load_vendor(args.config_dir / "vendor.yaml" if args.config_dir else None).portal_url
    except (InvalidConfig, OSError):  # the URL is a convenience: the token is issued either way
        portal_url = "https://<portal>/oem-portal/"
    return portal_url.rstrip("/") + "/calendar.ics"


def cmd_token(args: argparse.Namespace) -> int:
    """Issue, rotate, list and revoke OEM portal tokens and install-calendar feed tokens
    (only their hashes are stored)."""
    from release_pipeline.signoff import approver_for
    from release_pipeline.tokens import issue_token, rotate_token

    def bind(oem_id: str, current: str | None) -> str | None:
        """The approver of the OEM's sign-off policy the token speaks for: required when
        the policy names its approvers, refused when it does not."""
        policy = _known_oem(args, oem_id).signoff_policy
        if not policy.named and not args.approver:
            return None
        person = approver_for(policy, args.approver or current, oem_id)
        return person.name if person else None

    if args.token_command == "issue":
        if not args.label.strip():
            raise UsageError("--label must say who holds the token")
        _check_inputs(args, {"label": inputs.NAME, "by": inputs.NAME, "approver": inputs.NAME})
        if args.feed and args.approver:
            raise UsageError("--feed: a feed token only reads the install calendar; it speaks for no --approver")
        valid_for = _days(args.days if args.days is not None else FEED_DAYS if args.feed else PORTAL_DAYS)
        oem = _known_oem(args, args.oem)
        approver = None if args.feed else bind(oem.id, None)
        issued = issue_token(
            _repository(args),
            oem_id=oem.id,
            label=args.label,
            created_by=args.by,
            valid_for=valid_for,
            approver=approver,
            kind="feed" if args.feed else "portal",
        )
        print(issued.token)
        bound = f", approver {approver}" if approver else ""
        what = "feed token" if args.feed else "token"
        print(
            f"{what} {issued.id} for OEM {oem.id} ({args.label!r}{bound}), valid until {_when(issued.expires_at)} UTC; "
            "hand it over securely: it is not shown again",
            file=sys.stderr,
        )
        if args.feed:
            print(
                f"subscribe with: {_feed_url(args)}?token=<the token above> (it opens the install calendar only)",
                file=sys.stderr,
            )
        return 0
    if args.token_command == "rotate":
        _check_inputs(args, {"by": inputs.NAME, "approver": inputs.NAME})
        row = _repository(args).portal_token(args.token_id)
        feed = row is not None and row.kind == "feed"
        if feed and args.approver:
            raise UsageError(f"token {args.token_id} is a feed token: it speaks for no --approver")
        valid_for = _days(args.days if args.days is not None else FEED_DAYS if feed else PORTAL_DAYS)
        try:
            issued = rotate_token(
                _repository(args), args.token_id, created_by=args.by, valid_for=valid_for, approver=bind
            )
        except LookupError as exc:
            raise UsageError(exc.args[0]) from None
        print(issued.token)
        print(
            f"token {issued.id} replaces token {args.token_id} of OEM {issued.oem_id} (now revoked), valid until "
            f"{_when(issued.expires_at)} UTC; hand it over securely: it is not shown again",
            file=sys.stderr,
        )
        return 0
    repo = _repository(args)
    if args.token_command == "revoke":
        row = repo.portal_token(args.token_id)
        if row is None:
            raise UsageError(f"no portal token {args.token_id}")
        if not repo.revoke_portal_token(args.token_id):
            raise UsageError(f"portal token {args.token_id} ({row.oem_id}, {row.label!r}) is already revoked")
        print(f"revoked token {args.token_id} of OEM {row.oem_id} ({row.label!r})")
        return 0
    now = pendulum.now("UTC")
    rows = [
        {
            "id": r.id,
            "oem": r.oem_id,
            "label": r.label,
            "created_by": r.created_by,
            "created": _when(r.created_at),
            "last_used": _when(r.last_used_at),
            "expires": _when(r.expires_at),
            "revoked": _when(r.revoked_at),
            "state": "revoked" if r.revoked_at else "expired" if r.expires_at <= now else "active",
            "approver": r.approver,
            "kind": r.kind,
        }
        for r in repo.portal_tokens(args.oem)
    ]
    if not args.json:  # the table shows the approver and a feed token's kind beside the holder
        for row in rows:
            approver, kind = row.pop("approver"), row.pop("kind")
            row["label"] += f" [approver {approver}]" if approver else ""
            row["label"] += " [calendar feed]" if kind == "feed" else ""
    _print_rows(rows, args.json)
    return 0


def _configure_token(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    issue = sub.add_parser("issue", help="issue a token for one OEM user (printed once)")
    issue.add_argument("--oem", required=True)
    issue.add_argument("--label", required=True, help="who holds it, e.g. ann@nimbus.example")
    issue.add_argument("--by", default=os.environ.get("USER", "operator"), help="who issues it")
    issue.add_argument(
        "--days",
        type=int,
        help=f"valid for this many days (default {PORTAL_DAYS}, a feed token {FEED_DAYS}; at most 366)",
    )
    issue.add_argument(
        "--approver",
        help="the approver of the OEM's sign-off policy it speaks for (required when the policy names them)",
    )
    issue.add_argument(
        "--feed",
        action="store_true",
        help="a read-only token for the OEM's install calendar (calendar.ics?token=...), and nothing else",
    )
    rotate = sub.add_parser("rotate", help="issue a replacement for a token (printed once) and revoke the old one")
    rotate.add_argument("token_id", type=int, metavar="ID")
    rotate.add_argument("--by", default=os.environ.get("USER", "operator"), help="who issues it")
    rotate.add_argument(
        "--days",
        type=int,
        help=f"valid for this many days (default {PORTAL_DAYS}, a feed token {FEED_DAYS}; at most 366)",
    )
    rotate.add_argument("--approver", help="bind the replacement to this approver (default: the old token's)")
    revoke = sub.add_parser("revoke", help="revoke a token by its id (see `token list`)")
    revoke.add_argument("token_id", type=int, metavar="ID")
    listing = sub.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("--oem")
    listing.add_argument("--json", action="store_true", help="print JSON")


def cmd_feedback(args: argparse.Namespace) -> int:
    """Record feedback on an OEM's behalf, or list what was recorded."""
    repo = _repository(args)
    if args.feedback_command == "record":
        if not args.title.strip():
            raise UsageError("--title: feedback needs a title (it is blank)")
        _check_inputs(
            args,
            {
                "title": inputs.TITLE,
                "body": inputs.BODY,
                "component": inputs.COMPONENT,
                "by": inputs.NAME,
                "submitted_by": inputs.Rule(inputs.MAX_NAME),
            },
        )
        if args.submitted_by is not None and not args.submitted_by.strip():
            raise UsageError("--submitted-by: a value is required (it is blank)")
        oem = _known_oem(args, args.oem)
        feedback_id = repo.record_feedback(
            oem_id=oem.id,
            category=FeedbackCategory(args.category),
            title=args.title,
            body=args.body,
            component=args.component,
            submitted_by=args.submitted_by or oem.display_name,
            recorded_by=args.by,
            channel="cli",
        )
        print(f"recorded feedback {feedback_id} from OEM {oem.id} ({args.category})")
        return 0
    rows = [
        {
            "id": f.id,
            "oem": f.oem_id,
            "category": f.category,
            "title": f.title,
            "by": f.submitted_by + (f" (recorded by {f.recorded_by})" if f.recorded_by else ""),
            "at": _when(f.created_at),
        }
        for f in repo.feedback(oem_id=args.oem)
    ]
    _print_rows(rows, args.json)
    return 0


def _configure_feedback(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    record = sub.add_parser("record", help="record feedback an OEM gave staff (channel 'cli')")
    record.add_argument("--oem", required=True)
    record.add_argument("--category", required=True, choices=[str(c) for c in FeedbackCategory])
    record.add_argument("--title", required=True)
    record.add_argument("--body", required=True)
    record.add_argument("--component")
    record.add_argument("--by", required=True, help="the staff member recording it")
    record.add_argument("--submitted-by", help="the OEM contact who gave it (default: the OEM)")
    listing = sub.add_parser("list", help="list recorded feedback")
    listing.add_argument("--oem")
    listing.add_argument("--json", action="store_true", help="print JSON")


# -- the roadmap: items in the vendor's words ----------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _staff_text(value: str | None, option: str, limit: int) -> str:
    """A text staff publish to every OEM: present, bounded, printable."""
    text = (value or "").strip()
    if not text:
        raise UsageError(f"{option} must not be empty: it is what every OEM reads")
    if len(text) > limit:
        raise UsageError(f"{option} is {len(text)} characters long; at most {limit}")
    if _CONTROL.search(text):
        raise UsageError(f"{option} holds a control character; write plain text")
    return text


def _staff_member(args: argparse.Namespace) -> str:
    by = (args.by or "").strip()
    if not by:
        raise UsageError("--by must name the staff member (it is recorded)")
    return by


def _roadmap_config(args: argparse.Namespace):
    return load_roadmap_config(args.config_dir / "roadmap.yaml" if args.config_dir else None)


def _roadmap_item(args: argparse.Namespace, repo: ReleaseRepository, item_id: str):
    """The item ``item_id``, from config/roadmap.yaml or the database."""
    from release_pipeline.roadmap import planned_items

    items = {p.id: p for p in planned_items(_roadmap_config(args), repo.planned_items())}
    if item_id not in items:
        known = ", ".join(sorted(items)) or "none yet"
        raise UsageError(f"no roadmap item {item_id!r} (items: {known}; see `release-train roadmap list`)")
    return items[item_id]


def _item_row(repo: ReleaseRepository, item, by: str) -> None:
    """Give a config item its database row (a copy of it) before staff change it there."""
    if repo.planned_item(item.id) is None:
        repo.publish_planned_item(
            item.id,
            title=item.title,
            description=item.description or "",
            by=by,
            kind=item.kind,
            component=item.component,
            target_release_id=item.target_release_id,
        )


def _feedback_row(repo: ReleaseRepository, feedback_id: int):
    row = repo.feedback_item(feedback_id)
    if row is None:
        raise UsageError(f"no feedback {feedback_id} (see `release-train roadmap list`)")
    return row


def _release_option(value: str | None) -> str | None:
    from release_pipeline.release_calendar import RELEASE_ID_PATTERN

    if value is None or value == "none":
        return None
    if not RELEASE_ID_PATTERN.match(value):
        raise UsageError(f"--release {value!r}: expected a release id such as 2026.24, or 'none'")
    return value


def cmd_roadmap(args: argparse.Namespace) -> int:
    """Publish, merge, hide and list roadmap items: what OEMs see is the vendor's words only."""
    from release_pipeline.roadmap import ITEM_ID_PATTERN

    repo = _repository(args)
    action = args.roadmap_command
    if action == "list":
        return _roadmap_list(args, repo)
    if action == "publish":
        row = _feedback_row(repo, args.feedback_id)
        title = _staff_text(args.title, "--title", 300)
        description = _staff_text(args.description, "--description", 4000)
        by = _staff_member(args)
        item_id = args.id or repo.free_planned_item_id(c.id for c in _roadmap_config(args).planned)
        if not re.match(ITEM_ID_PATTERN, item_id):
            raise UsageError(f"--id {item_id!r}: use 2-80 of a-z, 0-9 and '-', starting with a letter or digit")
        if args.id and item_id in {c.id for c in _roadmap_config(args).planned}:
            raise UsageError(f"--id {item_id!r} is an item of config/roadmap.yaml: merge into it instead")
        repo.publish_planned_item(
            item_id,
            title=title,
            description=description,
            by=by,
            kind=args.kind,
            component=args.component,
            target_release_id=_release_option(args.release),
        )
        repo.link_feedback(row.id, item_id, by=by)
        print(f"published roadmap item {item_id} ({title!r}) from feedback {row.id} of OEM {row.oem_id}")
        print("every OEM sees its title and description in the next roadmap update", file=sys.stderr)
        return 0
    if action == "merge":
        row = _feedback_row(repo, args.feedback_id)
        item = _roadmap_item(args, repo, args.into)
        if item.hidden:
            raise UsageError(f"roadmap item {item.id} is hidden: `release-train roadmap show {item.id}` first")
        repo.link_feedback(row.id, item.id, by=_staff_member(args))
        print(f"feedback {row.id} of OEM {row.oem_id} now counts for roadmap item {item.id} ({item.title!r})")
        return 0
    if action in ("hide", "show"):
        item, by = _roadmap_item(args, repo, args.item), _staff_member(args)
        hidden = pendulum.now("UTC") if action == "hide" else None
        _item_row(repo, item, by)
        repo.update_planned_item(item.id, by=by, hidden_at=hidden)
        state = "hidden from every OEM" if hidden else "shown to OEMs again"
        print(f"roadmap item {item.id} ({item.title!r}) is {state} from the next roadmap run")
        return 0
    # edit
    item = _roadmap_item(args, repo, args.item)
    changes = {}
    if args.title is not None:
        changes["title"] = _staff_text(args.title, "--title", 300)
    if args.description is not None:
        changes["description"] = _staff_text(args.description, "--description", 4000)
    if args.component is not None:
        changes["component"] = args.component.strip() or None
    if args.release is not None:
        changes["target_release_id"] = _release_option(args.release)
    if not changes:
        raise UsageError("nothing to change: pass --title, --description, --component or --release")
    by = _staff_member(args)
    _item_row(repo, item, by)
    repo.update_planned_item(item.id, by=by, **changes)
    print(f"roadmap item {item.id} changed: {', '.join(sorted(changes))}")
    return 0


def _roadmap_list(args: argparse.Namespace, repo: ReleaseRepository) -> int:
    """The items (what OEMs may see) with their asks, then the asks on no item: the
    feedback staff still have to publish, merge or leave."""
    from release_pipeline.roadmap import LOOKBACK, FeedbackEntry, assign, planned_items, shipped_items

    now = pendulum.now("UTC")
    registry = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None)
    planned = planned_items(_roadmap_config(args), repo.planned_items())
    feedback = [FeedbackEntry.from_row(r) for r in repo.feedback(since=now - LOOKBACK) if r.oem_id in registry.oems]
    asks, unassigned = assign(feedback, planned, {o.id: o.tier for o in registry.oems.values()}, now)
    shipped = shipped_items(repo.change_roadmap_links())
    items = [
        {
            "id": p.id,
            "title": p.title,
            "source": p.source,
            "release": shipped.get(p.id) or p.target_release_id or "-",
            "state": "hidden" if p.hidden else f"shipped in {shipped[p.id]}" if p.id in shipped else "published",
            "asked_by": len({e.oem_id for e in asks.get(p.id, [])}),
            "feedback": ",".join(str(e.id) for e in asks.get(p.id, [])) or "-",
        }
        for p in planned
    ]
    open_asks = [
        {"feedback": e.id, "oem": e.oem_id, "category": str(e.category), "title": e.title, "at": _when(e.created_at)}
        for e in unassigned
    ]
    if args.json:
        print(json.dumps({"items": items, "unpublished_asks": open_asks}, indent=2))
        return 0
    print("Roadmap items (the vendor's words; OEMs see the published ones):")
    print_table(items)
    print()
    print("Asks on no item (each OEM sees only its own; publish or merge them):")
    print_table(open_asks)
    return 0


def _configure_roadmap(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="roadmap_command", required=True, metavar="ACTION")
    by = {"default": os.environ.get("USER", ""), "help": "the staff member (recorded; default: $USER)"}
    publish = sub.add_parser("publish", help="turn an ask into a published item, in the vendor's words")
    publish.add_argument("feedback_id", type=int, metavar="FEEDBACK_ID")
    publish.add_argument("--title", required=True, help="the title every OEM reads")
    publish.add_argument("--description", required=True, help="the public description every OEM reads")
    publish.add_argument("--id", help="item id (default: the next item-N; never made from the ask's text)")
    publish.add_argument("--kind", choices=["functionality", "component"], default="functionality")
    publish.add_argument("--component")
    publish.add_argument("--release", help="the release it is planned for, e.g. 2026.26")
    publish.add_argument("--by", **by)
    merge = sub.add_parser("merge", help="count an ask for an existing item")
    merge.add_argument("feedback_id", type=int, metavar="FEEDBACK_ID")
    merge.add_argument("--into", required=True, metavar="ITEM")
    merge.add_argument("--by", **by)
    for name, text in (("hide", "hide an item from every OEM"), ("show", "show a hidden item again")):
        hide = sub.add_parser(name, help=text)
        hide.add_argument("item", metavar="ITEM")
        hide.add_argument("--by", **by)
    edit = sub.add_parser("edit", help="change an item's title, description, component or planned release")
    edit.add_argument("item", metavar="ITEM")
    edit.add_argument("--title")
    edit.add_argument("--description")
    edit.add_argument("--component")
    edit.add_argument("--release", help="a release id, or 'none' for not yet planned")
    edit.add_argument("--by", **by)
    listing = sub.add_parser("list", help="list items and the asks on no item")
    listing.add_argument("--json", action="store_true", help="print JSON")


def _decide(args: argparse.Namespace, decision: Decision) -> int:
    from release_pipeline.signoff import decide

    _check_inputs(
        args,
        {
            "release": inputs.RELEASE,
            "change": inputs.CHANGE,
            "by": inputs.NAME,
            "on_behalf_of": inputs.Rule(inputs.MAX_NAME),
            "comment": inputs.COMMENT,
            "approver": inputs.NAME,
        },
    )
    if args.on_behalf_of is not None and not args.on_behalf_of.strip():
        raise UsageError("--on-behalf-of: a value is required (it is blank)")
    oem = _known_oem(args, args.oem)
    events = decide(
        _repository(args),
        oem_id=oem.id,
        release_id=args.release,
        decision=decision,
        change_ids=args.change or None,
        actor=args.on_behalf_of or args.approver or oem.display_name,
        channel="cli",
        comment=args.comment,
        recorded_by=args.by,
        policy=oem.signoff_policy,
        approver=args.approver,
    )
    whose = f" as {args.approver}'s" if args.approver else ""
    print(
        f"recorded {len(events)} {decision} decision(s){whose} for OEM {oem.id} on release {args.release} "
        f"(by {args.by})"
    )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Record an OEM's approval of a release's changes on its behalf."""
    return _decide(args, Decision.APPROVED)


def cmd_reject(args: argparse.Namespace) -> int:
    """Record an OEM's rejection of a release's changes on its behalf (--comment required)."""
    return _decide(args, Decision.REJECTED)


def _configure_decision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--oem", required=True)
    parser.add_argument("--release", required=True, help="release id, e.g. 2026.24")
    parser.add_argument("--change", action="append", help="a change id (repeat); default: every change")
    parser.add_argument("--by", required=True, help="the staff member recording it")
    parser.add_argument("--on-behalf-of", help="the OEM contact who decided (default: the approver, else the OEM)")
    parser.add_argument(
        "--approver", help="the approver of the OEM's sign-off policy who decided (required when it names them)"
    )
    parser.add_argument("--comment", help="why (required for a rejection)")


def cmd_signoff(args: argparse.Namespace) -> int:
    """Staff override of a rejection (with a reason), and the sign-off record of a release as CSV."""
    import csv

    from release_pipeline.signoff import EXPORT_COLUMNS, override, signoff_export

    _check_inputs(
        args,
        {
            "release": inputs.RELEASE,
            "change": inputs.CHANGE,
            "by": inputs.NAME,
            "approver": inputs.NAME,
            "reason": inputs.Rule(inputs.MAX_COMMENT, multiline=True, required=True),
        },
    )
    oem = _known_oem(args, args.oem)
    repo = _repository(args)
    if args.signoff_command == "override":
        events = override(
            repo,
            oem_id=oem.id,
            release_id=args.release,
            reason=args.reason,
            by=args.by,
            change_ids=args.change or None,
            approver=args.approver,
            policy=oem.signoff_policy,
        )
        print(f"overrode {len(events)} rejection(s) of OEM {oem.id} on release {args.release} (by {args.by})")
        return 0
    rows = signoff_export(repo, oem.id, args.release)
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(rows)} decision(s) of OEM {oem.id} on release {args.release} to {args.out}", file=sys.stderr)
    return 0


def _configure_signoff(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="signoff_command", required=True, metavar="ACTION")
    lift = sub.add_parser("override", help="lift the rejections blocking a release's changes, with a reason")
    lift.add_argument("--oem", required=True)
    lift.add_argument("--release", required=True, help="release id, e.g. 2026.24")
    lift.add_argument("--change", action="append", help="a change id (repeat); default: every rejected change")
    lift.add_argument("--approver", help="only this approver's rejection (default: every blocking one)")
    lift.add_argument("--reason", required=True, help="why the rejection is overridden (recorded)")
    lift.add_argument("--by", required=True, help="the staff member recording it")
    export = sub.add_parser("export", help="the sign-off record of one release for one OEM, as CSV")
    export.add_argument("--oem", required=True)
    export.add_argument("--release", required=True, help="release id, e.g. 2026.24")
    export.add_argument("--out", type=Path, help="write to this file (default: stdout)")


def cmd_status(args: argparse.Namespace) -> int:
    """The OEMs x releases matrix: installed / approved / pending / rejected / failed."""
    from release_pipeline.status import status_matrix

    registry = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None)
    oems = [o.id for o in (registry.oems.values() if args.all else registry.enabled)]
    policies = {oem: registry.oems[oem].signoff_policy for oem in oems}
    matrix = status_matrix(_repository(args), oems, releases=args.release or None, last=args.last, policies=policies)
    if args.json:
        from release_pipeline.explain import explain
        from release_pipeline.release_calendar import load_calendar

        train = load_calendar(args.config_dir / "calendar.yaml" if args.config_dir else None)
        now, repo = pendulum.now("UTC"), _repository(args)
        why = {oem: explain(repo, train, registry.oems[oem], now) for oem in oems}
        print(json.dumps({**matrix.as_json(), "explain": why}, indent=2))
    else:
        print_table(matrix.rows())
    return 0


def _configure_explain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("oem", help="the OEM's id")
    parser.add_argument("--json", action="store_true", help="print JSON")


def cmd_explain(args: argparse.Namespace) -> int:
    """Where one OEM stands and why: version, next install day, sign-off, last delivery, what comes next."""
    from release_pipeline.explain import explain
    from release_pipeline.release_calendar import load_calendar

    oem = _known_oem(args, args.oem)
    train = load_calendar(args.config_dir / "calendar.yaml" if args.config_dir else None)
    answer = explain(_repository(args), train, oem, pendulum.now("UTC"))
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(f"{oem.id}: runs {answer['running'] or 'unknown'}; next install day {answer['install_day']['shown']}")
    print(f"sign-off due {answer['sign_off_deadline']['shown']}")
    print(f"rollout wave {answer['wave']}")
    if halted := answer["halt"]:
        origin = f" on the instance of {halted['oem']}" if halted["oem"] else ""
        print(f"HALTED: {halted['release']} ({halted['cause']}{origin}, by {halted['by']}): {halted['detail']}")
    print(f"sign-off: {answer['signoff_policy']} per change")
    if answer["aims_at"]:
        print(f"aims at {answer['aims_at']} as things stand")
    for release in answer["releases"]:
        said = [f"{r['change']} rejected by {r['by']}: {r['comment']}" for r in release["rejected"]]
        if release["waiting_for"]:
            said += [f"{w['change']} waits for {w['for']}" for w in release["waiting_for"]]
        elif release["pending"]:
            said += [f"awaiting sign-off of {', '.join(release['pending'])}"]
        print(f"  {release['release']}: {release['state']}" + (f" ({'; '.join(said)})" if said else ""))
    if last := answer["last_delivery"]:
        print(f"last delivery: {last['release']} {last['status']}: {last['reason'] or '-'}")
    print(f"next: {answer['next']}")
    return 0


def _configure_forecast(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--oem", help="one OEM's id (default: every enabled OEM)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def cmd_forecast(args: argparse.Namespace) -> int:
    """What each OEM's next install brings if nothing changes: release, time, what is still owed, conflicts."""
    from release_pipeline.forecast import forecast

    if args.oem:
        oems = [_known_oem(args, args.oem)]
    else:
        oems = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None).enabled
    train = load_calendar(args.config_dir / "calendar.yaml" if args.config_dir else None)
    repo, now = _repository(args), pendulum.now("UTC")
    answers = [forecast(repo, train, oem, now) for oem in oems]
    if args.json:
        print(json.dumps([a.as_json() for a in answers], indent=2))
        return 0
    for ahead in answers:
        shown = ahead.as_json()
        print(f"{ahead.oem_id}: cycle {ahead.cycle_key}, wave {ahead.wave}, runs {ahead.running or 'unknown'}")
        print(f"  installs: {ahead.installs or 'nothing'} at {shown['install_at_shown']}")
        if ahead.halt:
            print(f"  HALTED: {ahead.halt.describe()}")
        print(f"  sign-off due: {ahead.deadline.shown()}")
        for owed in ahead.owed:
            print(f"  owed: {owed.change_id} ({owed.release_id}, {owed.state}) from {', '.join(owed.approvers)}")
        for conflict in ahead.conflicts:
            print(f"  conflict: {conflict}")
        print(f"  if nothing changes: {ahead.outcome}")
    return 0


def _configure_trace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("change_id", metavar="CHANGE_ID", help="the change's id, e.g. CHG-1003")
    parser.add_argument("--json", action="store_true", help="print JSON")


def cmd_trace(args: argparse.Namespace) -> int:
    """A change's path: merged, cut into which release, carried through which, QA and production,
    and per enabled OEM asked, decided by whom, installed when; ends with one answer per OEM."""
    from release_pipeline.trace import UnknownChange, trace

    try:
        inputs.CHANGE.check("CHANGE_ID", args.change_id)
    except inputs.InvalidInput as exc:
        raise UsageError(str(exc)) from None
    oems = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None).enabled
    try:
        found = trace(_repository(args), args.change_id, oems)
    except UnknownChange as exc:
        raise UsageError(exc.args[0]) from None
    answer = trace_json(found)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    change, path = answer["change"], answer["path"]
    print(f"{change['id']}: {change['title']} ({change['type']}, {change['component']})")
    print(f"  merged {answer['merged_at']}, cut into {path['cut_into']}")
    if path["carried_into"]:
        print(f"  carried into {', '.join(path['carried_into'])}")
    shipped = f"with {path['carrier']} at {answer['in_production_at']}" if path["carrier"] else "not yet"
    print(f"  in production: {shipped}")
    for release in answer["releases"]:
        print(f"release {release['release']} ({release['status']})")
        for event in release["events"]:
            detail = f": {event['detail']}" if event["detail"] else ""
            print(f"  {event['at']}  {event['event']} by {event['actor']}{detail}")
    for oem in answer["oems"]:
        asked = f"asked {oem['asked']['at']} (release {oem['asked']['release']})" if oem["asked"] else "not asked"
        print(f"{oem['oem']}: {asked}" + (f"; {oem['state']}" if oem["state"] else ""))
        for d in oem["decisions"]:
            who = d["approver"] or d["actor"]
            said = f"  {d['at']}  {d['decision']} by {who}" + (f" ({d['role']})" if d["role"] else "")
            said += f", recorded by {d['recorded_by']}" if d["recorded_by"] else ""
            said += f" via {d['channel']}" + (f": {d['comment']}" if d["comment"] else "")
            print(said + ("" if d["counts"] else " [superseded]"))
        if oem["running_since"]:
            print(f"  installed with {oem['running_since']['release']} at {oem['running_since']['at']}")
    print(f"does each OEM have {change['id']}? (times in UTC)")
    for oem in answer["oems"]:
        print(f"  {oem['oem']}: {oem['answer']}")
    return 0


def trace_json(found) -> dict:
    """``release-train trace``'s answer: text and ``--json`` print the same, times as
    the CLI shows them (UTC, to the minute)."""
    change, path = found.change, found.path
    return {
        "change": {
            "id": change.id,
            "title": change.title,
            "type": str(change.type),
            "component": change.component,
            "breaking": change.breaking,
        },
        "merged_at": _when(change.merged_at),
        "path": {"cut_into": path.release_id, "carried_into": list(path.carried_into), "carrier": path.carrier},
        "in_production_at": _when(found.in_production_at) if path.carrier else None,
        "releases": [
            {
                "release": release_id,
                "status": found.statuses[release_id],
                "events": [
                    {"event": e.event, "at": _when(e.created_at), "actor": e.actor, "detail": e.detail}
                    for e in found.events[release_id]
                ],
            }
            for release_id in path.releases
        ],
        "oems": [
            {
                "oem": o.oem.id,
                "asked": {"release": o.asked_for, "at": _when(o.asked_at)} if o.asked_for else None,
                "state": o.verdict.state if o.verdict else None,
                "decisions": [
                    {
                        "decision": str(d.decision),
                        "approver": d.approver,
                        "role": d.approver_role,
                        "actor": d.actor,
                        "recorded_by": d.recorded_by,
                        "channel": d.channel,
                        "at": _when(d.decided_at),
                        "comment": d.comment,
                        "counts": d.event_id in o.counting,
                    }
                    for d in o.decisions
                ],
                "runs": o.runs,
                "running_since": {"release": o.running.release_id, "at": _when(o.running.at)} if o.running else None,
                "answer": o.answer(_when),
            }
            for o in found.oems
        ],
    }


def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--release", action="append", help="a release column (repeat); default: the last ones")
    parser.add_argument("--last", type=int, default=6, help="how many recent releases (default 6)")
    parser.add_argument("--all", action="store_true", help="include disabled OEMs")


def cmd_change(args: argparse.Namespace) -> int:
    """Correct a recorded change's text, e.g. a name no OEM may read (then release what was held),
    or name the roadmap items it delivers."""
    if args.change_command == "link-roadmap":
        return _link_roadmap(args)
    if not args.by.strip():
        raise UsageError("--by must name the staff member editing it")
    if args.title is None and args.description is None and args.component is None:
        raise UsageError("give at least one of --title, --description, --component")
    changed = _repository(args).update_change_text(
        args.change_id, actor=args.by, title=args.title, description=args.description, component=args.component
    )
    print(f"change {args.change_id}: " + (f"updated {', '.join(changed)}" if changed else "nothing to change"))
    return 0


def _link_roadmap(args: argparse.Namespace) -> int:
    """Record that a change delivers roadmap items: the OEMs that asked are told when it
    reaches them, and the items leave the ranking once it is in production."""
    from release_pipeline.roadmap import UnknownRoadmapItems, check_item_ids, planned_items

    by = _staff_member(args)
    repo = _repository(args)
    if not repo.changes_by_id([args.change_id]):
        raise UsageError(f"no change {args.change_id!r} recorded (changes are recorded when a release is cut)")
    try:
        check_item_ids(
            f"change {args.change_id!r}", args.items, planned_items(_roadmap_config(args), repo.planned_items())
        )
    except UnknownRoadmapItems as exc:
        raise UsageError(str(exc)) from None
    added = repo.link_change_roadmap_items(args.change_id, args.items, by=by)
    already = [i for i in dict.fromkeys(args.items) if i not in added]
    print(
        f"change {args.change_id} delivers roadmap item(s) {', '.join(dict.fromkeys(args.items))}"
        + (f" ({', '.join(already)} already linked)" if already else "")
    )
    return 0


def _configure_change(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="change_command", required=True, metavar="ACTION")
    edit = sub.add_parser("edit", help="correct a change's title, description or component")
    edit.add_argument("change_id", metavar="CHANGE_ID")
    edit.add_argument("--title")
    edit.add_argument("--description")
    edit.add_argument("--component")
    edit.add_argument("--by", required=True, help="the staff member editing it")
    link = sub.add_parser("link-roadmap", help="name the roadmap items a change delivers")
    link.add_argument("change_id", metavar="CHANGE_ID")
    link.add_argument("items", nargs="+", metavar="ITEM", help="roadmap item ids (see `release-train roadmap list`)")
    link.add_argument("--by", default=os.environ.get("USER", ""), help="the staff member (recorded; default: $USER)")


def cmd_held(args: argparse.Namespace) -> int:
    """Sends the white-label guard held: list them, or release one once it is fixed."""
    from release_pipeline import held
    from release_pipeline.mail_send import smtp_sender

    repo = _repository(args)
    if args.held_command == "list":
        rows = repo.held_sends(status=None if args.all else "held", oem_id=args.oem)
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": r.id,
                            "oem": r.oem_id,
                            "channel": r.channel,
                            "key": r.key,
                            "status": r.status,
                            "attempts": r.attempts,
                            "held_at": r.created_at.isoformat(),
                            "leaks": r.leaks,
                            "detail": r.detail,
                        }
                        for r in rows
                    ],
                    indent=2,
                )
            )
            return 0
        print_table(
            [
                {
                    "id": r.id,
                    "oem": r.oem_id,
                    "channel": r.channel,
                    "key": r.key,
                    "status": r.status,
                    "held": _when(r.created_at),
                    "leak": held.describe_leaks(r.leaks[:1])[0]
                    + (f" (+{len(r.leaks) - 1})" if len(r.leaks) > 1 else ""),
                }
                for r in rows
            ]
        )
        return 0
    if not args.by.strip():
        raise UsageError("--by must name the staff member releasing it")
    config = args.config_dir
    registry = load_registry(config / "oems.yaml" if config else None)
    vendor = load_vendor(config / "vendor.yaml" if config else None)
    try:
        outcome = held.release(
            repo,
            args.held_id,
            by=args.by,
            registry=registry,
            vendor=vendor,
            send=smtp_sender(repo, args.connections_file, otherwise=held.http_sender(args.connections_file)),
        )
    except (LookupError, KeyError) as exc:
        raise UsageError(exc.args[0]) from None
    except held.StillLeaks as exc:
        raise UsageError(f"{exc}\nnothing was sent: fix the OEM's glossary (config/oems.yaml) or the text") from None
    except OSError as exc:
        print(f"error: held send #{args.held_id}: sending failed, it stays held: {exc}", file=sys.stderr)
        return 1
    print(outcome)
    return 0


def _configure_held(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="held_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="held sends, with the passage that leaked")
    listing.add_argument("--oem")
    listing.add_argument("--all", action="store_true", help="released ones too")
    listing.add_argument("--json", action="store_true", help="print JSON (every leak)")
    release = sub.add_parser(
        "release", help="re-check a held send with the current config and send it if it passes (exit 2 if not)"
    )
    release.add_argument("held_id", type=int, metavar="ID")
    release.add_argument("--by", required=True, help="the staff member releasing it")
    release.add_argument(
        "--connections-file",
        type=Path,
        help="Airflow connections JSON (deploy/secrets/connections.json); default: $AIRFLOW_CONN_<ID>",
    )


# -- rollout waves ----------------------------------------------------------------------------------
def cmd_wave(args: argparse.Namespace) -> int:
    """Halt or resume a release for the rollout waves, and show the waves and the halts."""
    from release_pipeline import waves

    _check_inputs(
        args,
        {
            "release": inputs.RELEASE,
            "by": inputs.NAME,
            "reason": inputs.Rule(inputs.MAX_COMMENT, multiline=True, required=True),
        },
    )
    repo, now = _repository(args), pendulum.now("UTC")
    if args.wave_command == "halt":
        by = _staff_member(args)
        if repo.release(args.release) is None:
            raise UsageError(f"release {args.release} is not recorded (see `release-train status`)")
        before = waves.halt_of(repo, args.release)
        new = waves.halt(repo, args.release, cause="staff", detail=args.reason, actor=by, at=now)
        if new:
            print(f"release {args.release} halted for every wave (by {by}): no OEM installs it until it is resumed")
        elif before is not None and before.wave != waves.STAFF_WAVE:
            was = f"was halted for {before.scope} ({before.cause})"
            print(f"release {args.release} {was}; now for every wave (by {by})")
        else:
            print(f"release {args.release} is already halted for every wave since {_when(before.at)} ({before.cause})")
        return 0
    if args.wave_command == "resume":
        by = _staff_member(args)
        try:
            lifted = waves.resume(repo, args.release, reason=args.reason, actor=by, at=now)
        except waves.NotHalted as exc:
            raise UsageError(str(exc)) from None
        print(
            f"release {args.release} resumed (by {by}; halted since {_when(lifted.at)}, {lifted.cause}): "
            "waiting deliveries go on in their next maintenance window"
        )
        return 0
    return _wave_status(args, repo, now)


def _wave_status(args: argparse.Namespace, repo: ReleaseRepository, now) -> int:
    from release_pipeline import waves

    registry = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None)
    train = load_calendar(args.config_dir / "calendar.yaml" if args.config_dir else None)
    cycle = train.delivery_cycle_at(now)
    if cycle.install_at < now:
        cycle = train.next_cycle(cycle)
    oems = [
        {
            "oem": oem.id,
            "wave": oem.wave,
            "cycle": cycle.key,
            "installs_from": waves.wave_install_at(train, cycle, oem).in_timezone(oem.timezone).isoformat(),
            "timezone": oem.timezone,
        }
        for oem in sorted(registry.enabled, key=lambda o: (o.wave, o.id))
    ]
    events = repo.wave_events(args.release)
    halted = waves.halts(repo)
    if args.release:
        halted = {r: h for r, h in halted.items() if r == args.release}
    if args.json:
        history = [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in e._mapping.items()} for e in events
        ]
        print(json.dumps({"oems": oems, "halts": [h.as_json() for h in halted.values()], "history": history}, indent=2))
        return 0
    print(f"waves of the cycle {cycle.key} (wave_gap_days {train.config.wave_gap_days}):")
    print_table([{k: r[k] for k in ("oem", "wave", "installs_from")} for r in oems] or [{"oem": "-"}])
    if not halted:
        print("no release is halted")
    for _release_id, standing in sorted(halted.items()):
        print(f"HALTED {standing.describe()}; since {_when(standing.at)} by {standing.actor}")
    if args.release:
        for e in events:
            what = f"{e.event} ({e.cause})" if e.event == "halted" else e.event
            print(f"  {_when(e.at)}  {what} by {e.actor}: {e.detail}")
    return 0


def _configure_wave(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="wave_command", required=True, metavar="ACTION")
    for action, text in (
        ("halt", "stop a release for every wave until it is resumed (recorded with who and why)"),
        ("resume", "lift a release's halt: waiting deliveries go on in their next maintenance window"),
    ):
        command = sub.add_parser(action, help=text)
        command.add_argument("release", help="release id, e.g. 2026.24")
        command.add_argument("--reason", required=True, help="why (recorded)")
        command.add_argument("--by", required=True, help="the staff member")
    status = sub.add_parser("status", help="each OEM's wave and when it installs, the halted releases")
    status.add_argument("--release", help="one release, with its halt and resume history")
    status.add_argument("--json", action="store_true", help="print JSON")


def _rollback_dict(r) -> dict:
    return {
        "id": r.id,
        "oem": r.oem_id,
        "from": r.from_release_id,
        "to": r.to_release_id,
        "status": str(r.status),
        "requested_by": r.requested_by,
        "requested_at": r.requested_at.isoformat(),
        "reason": r.reason,
        "regression": r.regression_id,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "decision_reason": r.decision_reason,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "detail": r.detail,
    }


def cmd_rollback(args: argparse.Namespace) -> int:
    """Rollbacks OEMs requested: list them, show one's history, approve or refuse one (docs/rollbacks.md)."""
    from release_pipeline import rollbacks

    repo = _repository(args)
    if args.rollback_command == "list":
        found = rollbacks.requests_of(repo, args.oem, args.status)
        if args.json:
            print(json.dumps([_rollback_dict(r) for r in found], indent=2))
            return 0
        print_table(
            [
                {
                    "id": r.id,
                    "oem": r.oem_id,
                    "from": r.from_release_id,
                    "to": r.to_release_id,
                    "status": r.status,
                    "requested": f"{_when(r.requested_at)} by {r.requested_by}",
                    "decided": f"{_when(r.decided_at)} by {r.decided_by}" if r.decided_by else "-",
                    "reason": _one_line(r.reason),
                }
                for r in found
            ]
        )
        return 0
    if args.rollback_command == "show":
        found = rollbacks.request_of(repo, args.request_id)
        print(json.dumps(_rollback_dict(found), indent=2))
        print_table(
            [
                {"at": _when(e.created_at), "status": e.status, "by": e.actor, "detail": _one_line(e.detail or "")}
                for e in repo.rollback_history(found.id)
            ]
        )
        return 0
    _check_inputs(args, {"by": inputs.NAME, "reason": inputs.Rule(inputs.MAX_COMMENT, multiline=True, required=True)})
    decide = rollbacks.approve if args.rollback_command == "approve" else rollbacks.refuse
    found = decide(repo, args.request_id, by=_staff_member(args), reason=args.reason)
    then = (
        "it runs in the OEM's next maintenance window outside a freeze (DAG oem_rollbacks)"
        if found.status == "approved"
        else f"the instance stays on {found.from_release_id}"
    )
    print(
        f"rollback request #{found.id} of OEM {found.oem_id} ({found.from_release_id} -> {found.to_release_id}) "
        f"{found.status} by {found.decided_by}; {then}; the OEM is told by the next oem_rollbacks run"
    )
    return 0


def _one_line(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _configure_rollback(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rollback_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="rollback requests, newest first")
    listing.add_argument("--oem")
    listing.add_argument("--status", help="requested, approved, refused, done or failed")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", help="one request and its history")
    show.add_argument("request_id", type=int, metavar="ID")
    for action, helped in (("approve", "approve a requested rollback"), ("refuse", "refuse a requested rollback")):
        decide = sub.add_parser(action, help=helped)
        decide.add_argument("request_id", type=int, metavar="ID")
        decide.add_argument("--reason", required=True, help="why (recorded, and told to the OEM)")
        decide.add_argument("--by", default=os.environ.get("USER", ""), help="the staff member (default: $USER)")


def cmd_regression(args: argparse.Namespace) -> int:
    """Regressions OEMs reported on the release their instance runs, newest first."""
    repo = _repository(args)
    rows = repo.regression_reports(args.oem, release_id=args.release)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "oem": r.oem_id,
                        "release": r.release_id,
                        "description": r.description,
                        "reported_by": r.reported_by,
                        "channel": r.channel,
                        "reported_at": r.created_at.isoformat(),
                        "vendor_alerted_at": r.vendor_alerted_at.isoformat() if r.vendor_alerted_at else None,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return 0
    print_table(
        [
            {
                "id": r.id,
                "oem": r.oem_id,
                "release": r.release_id,
                "reported": f"{_when(r.created_at)} by {r.reported_by} ({r.channel})",
                "alerted": _when(r.vendor_alerted_at),
                "description": _one_line(r.description),
            }
            for r in rows
        ]
    )
    return 0


def _configure_regression(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="regression_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="regression reports, newest first")
    listing.add_argument("--oem")
    listing.add_argument("--release", help="release id, e.g. 2026.24")
    listing.add_argument("--json", action="store_true", help="print JSON")


def print_table(rows: Sequence[dict]) -> None:
    if not rows:
        print("(none)")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None]]] = {
    "check-config": (cmd_check_config, _configure_check_config),
    "oems": (cmd_oems, lambda p: p.add_argument("--json", action="store_true", help="print JSON")),
    "db-upgrade": (cmd_db_upgrade, lambda p: None),
    "token": (cmd_token, _configure_token),
    "feedback": (cmd_feedback, _configure_feedback),
    "roadmap": (cmd_roadmap, _configure_roadmap),
    "approve": (cmd_approve, _configure_decision),
    "reject": (cmd_reject, _configure_decision),
    "signoff": (cmd_signoff, _configure_signoff),
    "status": (cmd_status, _configure_status),
    "explain": (cmd_explain, _configure_explain),
    "forecast": (cmd_forecast, _configure_forecast),
    "trace": (cmd_trace, _configure_trace),
    "held": (cmd_held, _configure_held),
    "change": (cmd_change, _configure_change),
    "wave": (cmd_wave, _configure_wave),
    "rollback": (cmd_rollback, _configure_rollback),
    "regression": (cmd_regression, _configure_regression),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="release-train", description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", help=f"release database SQLAlchemy URL (default: ${DB_URL_ENV})")
    parser.add_argument("--config-dir", type=Path, help="directory of calendar.yaml and oems.yaml (default: config/)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (handler, configure) in COMMANDS.items():
        command = sub.add_parser(name, help=handler.__doc__.splitlines()[0], description=handler.__doc__)
        configure(command)
        command.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, InvalidConfig, SignoffError, ReleaseDbError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the database is down or refused: one line, no traceback
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: release database: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
