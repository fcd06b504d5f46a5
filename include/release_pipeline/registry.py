"""The OEM registry: ``config/oems.yaml``, validated entry by entry.

One broken entry never hides the others: :func:`load_registry` returns the valid
OEMs together with the errors of the broken ones, and callers decide how loudly to
report them (the DAG files surface them as an Airflow import error, the CLI exits
non-zero).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from release_pipeline.config_loading import (
    ConfigError,
    InvalidConfig,
    config_dir,
    did_you_mean,
    load_located_yaml,
    validation_errors,
)
from release_pipeline.mail_address import address_problem, bare_address, domain_of
from release_pipeline.release_calendar import RELEASE_ID_PATTERN, validate_timezone
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy

OEM_ID_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Tier = Literal["gold", "silver", "bronze"]
DocsStrategy = Literal["ava", "oem"]


class MaintenanceWindow(BaseModel):
    """When installs may run, in the OEM's timezone. A window whose ``end`` is not
    after its ``start`` runs past midnight into the next day; ``days`` name the day
    on which the window opens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = WEEKDAYS
    start: dt.time
    end: dt.time

    @field_validator("days")
    @classmethod
    def _at_least_one_day(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        if not days:
            raise ValueError("name at least one day (mon..sun)")
        return days

    def _openings(self, first_day: dt.date, tz: str, days: int):
        """(open, close) of every window opening on ``days`` days from ``first_day``,
        both taken on the wall clock so a DST change does not move them."""
        for offset in range(days):
            day = first_day + dt.timedelta(days=offset)
            if WEEKDAYS[day.weekday()] in self.days:
                close_day = day if self.end > self.start else day + dt.timedelta(days=1)
                yield (
                    pendulum.datetime(day.year, day.month, day.day, self.start.hour, self.start.minute, tz=tz),
                    pendulum.datetime(
                        close_day.year, close_day.month, close_day.day, self.end.hour, self.end.minute, tz=tz
                    ),
                )

    def contains(self, moment: dt.datetime, tz: str) -> bool:
        moment = pendulum.instance(moment)
        yesterday = moment.in_timezone(tz).date() - dt.timedelta(days=1)
        return any(opens <= moment < closes for opens, closes in self._openings(yesterday, tz, 2))

    def window_around(self, moment: dt.datetime, tz: str) -> tuple[pendulum.DateTime, pendulum.DateTime]:
        """(open, close) of the window ``moment`` falls in (an opening falls in its own);
        ``ValueError`` when it falls in none."""
        moment = pendulum.instance(moment)
        yesterday = moment.in_timezone(tz).date() - dt.timedelta(days=1)
        for opens, closes in self._openings(yesterday, tz, 2):
            if opens <= moment < closes:
                return opens, closes
        raise ValueError(f"{moment.isoformat()} is outside the maintenance window")

    def next_opening(self, moment: dt.datetime, tz: str) -> pendulum.DateTime:
        """``moment`` itself when inside the window, else when the window next opens."""
        moment = pendulum.instance(moment)
        if self.contains(moment, tz):
            return moment
        today = moment.in_timezone(tz).date()
        return next(opens for opens, _ in self._openings(today, tz, 8) if opens > moment)


class OemConnections(BaseModel):
    """Airflow connection ids; secrets live in the connections, never here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ssh: str
    health: str
    docs: str
    notify: str


class OemEmail(BaseModel):
    """E-mail to the OEM instead of the HTTP notification sink: who gets it and whom it
    comes from. Addresses only; the SMTP server and its credentials live in the Airflow
    connection ``connection`` (default ``oem_<id>_smtp``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    to: tuple[str, ...] = Field(min_length=1)
    cc: tuple[str, ...] = ()
    sender: str = Field(alias="from", description="the OEM-facing sender: never a vendor address")
    reply_to: str
    connection: str = Field(min_length=1)
    # the mailing list the release messages belong to; default "<brand> releases <releases.<from domain>>"
    list_id: str | None = None

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if problem := address_problem(value):
                raise ValueError(problem)
        if len({bare_address(v).lower() for v in values}) != len(values):
            raise ValueError(f"an address is listed twice: {list(values)}")
        return values

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str) -> str:
        if problem := address_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _no_address_twice(self) -> OemEmail:
        if both := {bare_address(a).lower() for a in self.to} & {bare_address(a).lower() for a in self.cc}:
            raise ValueError(f"{sorted(both)[0]} is in both to and cc")
        return self

    @property
    def domain(self) -> str:
        """The sender's domain: Message-IDs and the List-Id are made in it."""
        return domain_of(self.sender)


class OemCommands(BaseModel):
    """Shell commands run on the OEM instance; ``{release}`` is the release id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "ava-ctl version"
    install: str = "ava-ctl install {release}"
    rollback: str = "ava-ctl rollback {release}"

    @field_validator("version")
    @classmethod
    def _no_placeholders(cls, template: str) -> str:
        return _check_template(template, allowed=set())

    @field_validator("install", "rollback")
    @classmethod
    def _release_placeholder(cls, template: str) -> str:
        return _check_template(template, allowed={"release"}, required={"release"})

    def render(self, which: Literal["version", "install", "rollback"], release_id: str | None = None) -> str:
        template = getattr(self, which)
        if which == "version":
            return template
        if release_id is None or not RELEASE_ID_PATTERN.match(release_id):
            raise ValueError(f"{release_id!r} is not a release id")
        return template.format(release=shlex.quote(release_id))


def _check_template(template: str, allowed: set[str], required: set[str] = frozenset()) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"malformed command template: {exc}") from None
    if unknown := names - allowed:
        hint = f"only {{{', '.join(sorted(allowed))}}} may be used" if allowed else "it takes no placeholders"
        raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}: {hint}")
    if missing := required - names:
        raise ValueError(f"must contain {{{sorted(missing)[0]}}}")
    if not template.strip():
        raise ValueError("must not be empty")
    return template


class Oem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=OEM_ID_PATTERN)
    display_name: str = Field(min_length=1)
    brand_name: str = Field(min_length=1, description="replaces the vendor's name in white-labelled texts")
    timezone: str
    tier: Tier
    enabled: bool = True
    docs_strategy: DocsStrategy
    feedback_cadence_weeks: int = Field(ge=1, le=26)
    maintenance_window: MaintenanceWindow
    connections: OemConnections
    commands: OemCommands = OemCommands()
    # sign-off is due when install day's window opens; True: install as soon as the OEM
    # approves, any window of the same cycle (never in a freeze)
    install_when_approved: bool = False
    # the OEM's rollout wave: 1 installs on install day, wave n (n-1) x the calendar's
    # wave_gap_days later; a release an earlier wave rolled back is halted for it
    wave: int = Field(default=1, ge=1, le=9)
    # the sign-off deadline told to the OEM: install day's window opening minus this many
    # days (the gate still takes a sign-off until the window opens)
    signoff_margin_days: int = Field(default=2, ge=0, le=14)
    # reminders to an OEM with pending changes, this many days before its deadline, each once
    signoff_reminder_days: tuple[int, ...] = Field(default=(5, 2, 1), max_length=10)
    # who signs off for the OEM and how many must; default: one decision by anyone of it
    signoff_policy: SignoffPolicy = DEFAULT_POLICY
    acceptance_url: str | None = Field(
        None, description="the vendor production behind the OEM's own domain, where it tests a release"
    )
    docs_url: str | None = Field(None, description="the OEM's documentation portal")
    glossary: dict[str, str] = Field(default_factory=dict, description="vendor term -> the OEM's term")
    # unset: messages go to the HTTP notification sink (connection ``connections.notify``)
    email: OemEmail | None = None

    @field_validator("acceptance_url", "docs_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an absolute http(s) URL (e.g. https://acceptance.example.com)")
        return value.rstrip("/")

    @field_validator("signoff_reminder_days")
    @classmethod
    def _reminder_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        for day in days:
            if not 1 <= day <= 28:
                raise ValueError(f"a reminder is sent 1 to 28 days before the deadline, not {day}")
        if len(set(days)) != len(days):
            raise ValueError(f"a reminder day is listed twice: {list(days)}")
        return tuple(sorted(days, reverse=True))

    @field_validator("glossary")
    @classmethod
    def _glossary_terms(cls, glossary: dict[str, str]) -> dict[str, str]:
        for term, replacement in glossary.items():
            if not any(ch.isalnum() for ch in term):
                raise ValueError(f"glossary term {term!r} needs a letter or digit")
            if not isinstance(replacement, str) or not replacement.strip():
                raise ValueError(f"glossary term {term!r}: the OEM's term must not be empty")
        return glossary

    @property
    def hosts(self) -> tuple[str, ...]:
        """The OEM's own hosts (acceptance and docs), as they appear in texts."""
        return tuple(urlsplit(u).hostname for u in (self.acceptance_url, self.docs_url) if u)

    @model_validator(mode="before")
    @classmethod
    def _default_connection_ids(cls, data: object) -> object:
        """Connection ids follow ``oem_<id>_<purpose>`` unless the entry names others."""
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            given = data.get("connections") or {}
            if isinstance(given, dict):
                defaults = {purpose: f"oem_{data['id']}_{purpose}" for purpose in OemConnections.model_fields}
                data = {**data, "connections": {**defaults, **given}}
            email = data.get("email")
            if isinstance(email, dict) and "connection" not in email:
                data = {**data, "email": {**email, "connection": f"oem_{data['id']}_smtp"}}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return validate_timezone(value)

    def in_maintenance_window(self, moment: dt.datetime) -> bool:
        return self.maintenance_window.contains(moment, self.timezone)

    def next_maintenance_opening(self, moment: dt.datetime) -> pendulum.DateTime:
        return self.maintenance_window.next_opening(moment, self.timezone)


@dataclass
class Registry:
    """The valid OEMs, sorted by id, and the errors of the entries left out."""

    oems: dict[str, Oem]
    errors: list[ConfigError] = field(default_factory=list)
    file: str = "config/oems.yaml"

    @property
    def enabled(self) -> list[Oem]:
        return [oem for oem in self.oems.values() if oem.enabled]

    def get(self, oem_id: str) -> Oem:
        try:
            return self.oems[oem_id]
        except KeyError:
            broken = any(e.entity == f"OEM '{oem_id}'" for e in self.errors)
            why = "its entry is invalid (see `make check-config`)" if broken else "no such OEM"
            raise KeyError(f"OEM {oem_id!r}: {why}{did_you_mean(oem_id, self.oems)}") from None

    def raise_for_errors(self) -> None:
        if self.errors:
            raise InvalidConfig(self.errors)


def load_registry(path: Path | None = None) -> Registry:
    """Validate every entry of ``config/oems.yaml``; only file-level problems raise."""
    located = load_located_yaml(path or config_dir() / "oems.yaml")
    data = located.data
    if not isinstance(data, dict) or not isinstance(data.get("oems"), list):
        raise InvalidConfig(
            [ConfigError(located.file, 1, None, "oems", "expected a top-level 'oems:' list of OEM entries")]
        )
    if unknown := sorted(set(data) - {"oems"}):
        raise InvalidConfig(
            [ConfigError(located.file, located.line_of((unknown[0],)), None, unknown[0], "unknown top-level key")]
        )
    oems: dict[str, Oem] = {}
    errors: list[ConfigError] = []
    for index, entry in enumerate(data["oems"]):
        base = ("oems", index)
        raw_id = entry.get("id") if isinstance(entry, dict) else None
        entity = f"OEM '{raw_id}'" if isinstance(raw_id, str) else f"OEM entry #{index + 1}"
        if isinstance(raw_id, str) and raw_id in oems:
            errors.append(ConfigError(located.file, located.line_of(base + ("id",)), entity, "id", "duplicate OEM id"))
            continue
        try:
            oem = Oem.model_validate(entry)
        except ValidationError as exc:
            errors.extend(validation_errors(exc, Oem, located, base, entity))
            continue
        oems[oem.id] = oem
    return Registry(oems=dict(sorted(oems.items())), errors=errors, file=located.file)


# Host key types SSHHook (paramiko) pins; ``host_key`` is "<type> <base64 key>", as in
# known_hosts or the output of `ssh-keyscan -t ed25519 HOST` without the host.
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
_TRUE = ("true", "1", "yes")


def _host_key_format_problem(host_key: str) -> str | None:
    parts = host_key.split()
    if len(parts) < 2 or parts[0] not in HOST_KEY_TYPES:
        return f"is not '<type> <base64 key>' with a type of {', '.join(HOST_KEY_TYPES)}"
    try:
        blob = base64.b64decode(parts[1], validate=True)
        length = int.from_bytes(blob[:4], "big")
        embedded = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        embedded = None
    if embedded != parts[0]:
        return f"is not a valid {parts[0]} public key (the base64 part does not decode to one)"
    return None


def ssh_host_key_problem(oem: Oem, extra: Mapping[str, object] | str | None) -> str | None:
    """Why the OEM's SSH connection (its ``extra``, a dict or JSON text) does not pin the
    instance's host key, or None when it does. Without a pinned key SSHHook would trust
    whatever answers at the OEM's address: every OEM connection must pin one."""
    where = f"OEM {oem.id!r}: connection {oem.connections.ssh!r}"
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except json.JSONDecodeError:
            return f"{where}: its extra is not valid JSON"
    extra = extra or {}
    if not isinstance(extra, Mapping):
        return f"{where}: its extra is not a JSON object"
    for flag in ("no_host_key_check", "allow_host_key_change"):
        if str(extra.get(flag, "")).lower() in _TRUE:
            return f"{where}: extra {flag!r} is true; the host key must be checked (set it to false or remove it)"
    host_key = extra.get("host_key")
    if not isinstance(host_key, str) or not host_key.strip():
        return (
            f"{where}: pins no host key; set its `host_key` extra to the instance's public host key "
            "(e.g. the key part of `ssh-keyscan -t ed25519 <host>`)"
        )
    if problem := _host_key_format_problem(host_key.strip()):
        return f"{where}: extra 'host_key' {problem}"
    return None
