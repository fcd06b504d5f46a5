"""``release-train``: the operator CLI of the release train.

The release database is the one in ``--db-url``, else ``$RELEASE_TRAIN_DB_URL``
(which ``make up`` writes into ``.airflow/env.sh`` beside the Airflow connection
``release_db`` that points at the same database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar
from release_pipeline.vendor import load_vendor

DB_URL_ENV = "RELEASE_TRAIN_DB_URL"


class UsageError(Exception):
    """Bad arguments or state the operator can fix; printed without a traceback."""


def _db_url(args: argparse.Namespace) -> str:
    url = args.db_url or os.environ.get(DB_URL_ENV)
    if not url:
        raise UsageError(f"no release database: pass --db-url or set {DB_URL_ENV} (`source .airflow/env.sh`)")
    return url


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate config/calendar.yaml, vendor.yaml and oems.yaml; non-zero exit on any error."""
    problems = []
    try:
        calendar = load_calendar(args.config_dir / "calendar.yaml" if args.config_dir else None)
    except InvalidConfig as exc:
        problems.extend(exc.errors)
        calendar = None
    try:
        load_vendor(args.config_dir / "vendor.yaml" if args.config_dir else None)
    except InvalidConfig as exc:
        problems.extend(exc.errors)
    try:
        registry = load_registry(args.config_dir / "oems.yaml" if args.config_dir else None)
        problems.extend(registry.errors)
    except InvalidConfig as exc:
        problems.extend(exc.errors)
        registry = None
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if calendar:
        print(f"calendar: {calendar.description}")
    if registry:
        enabled = len(registry.enabled)
        print(
            f"OEMs: {len(registry.oems)} valid ({enabled} enabled), {len({e.entity for e in registry.errors})} invalid"
        )
    return 1 if problems else 0


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
    "check-config": (cmd_check_config, lambda p: None),
    "oems": (cmd_oems, lambda p: p.add_argument("--json", action="store_true", help="print JSON")),
    "db-upgrade": (cmd_db_upgrade, lambda p: None),
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
    except (UsageError, InvalidConfig) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
