"""What the simulated vendor platform and OEM instances remember, and the faults
a test can inject. Served by one asyncio loop, so no locking is needed."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pendulum

from release_pipeline.registry import OemCommands

TRANSIENT_EXIT = 75  # EX_TEMPFAIL


@dataclass
class CommandResult:
    exit_status: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class OemInstance:
    oem_id: str
    version: str | None
    commands: OemCommands
    healthy: bool = True
    install_failures: int = 0  # the next N installs fail transiently
    break_on_install: bool = False  # installs "succeed" but leave the instance unhealthy
    install_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    def patterns(self) -> dict[str, re.Pattern]:
        def compile_(template: str) -> re.Pattern:
            parts = re.split(r"(\{release\})", template)
            regex = "".join(r"(?P<release>\S+)" if p == "{release}" else re.escape(p) for p in parts)
            return re.compile(regex)

        return {name: compile_(getattr(self.commands, name)) for name in ("version", "install", "rollback")}

    def run(self, command: str) -> tuple[str, str | None]:
        """(action, release) for a command line, or ("unknown", None)."""
        for action, pattern in self.patterns().items():
            match = pattern.fullmatch(command.strip())
            if match:
                return action, match.groupdict().get("release")
        return "unknown", None


@dataclass
class Deployment:
    id: str
    release_id: str
    idempotency_key: str | None
    started: float
    will_fail: bool
    seconds: float

    @property
    def status(self) -> str:
        if time.monotonic() - self.started < self.seconds:
            return "running"
        return "failed" if self.will_fail else "succeeded"


class SimulatorState:
    def __init__(
        self, oems: dict[str, OemCommands], initial_version: str | None, mailboxes: dict[str, str] | None = None
    ):
        self._oem_commands = oems
        self._initial_version = initial_version
        self.mailboxes = {address.lower(): oem_id for address, oem_id in (mailboxes or {}).items()}
        self.reset()

    def reset(self) -> None:
        self.changes: list[dict] = []
        self.feed_raw: str | None = None  # when set, the change feed answers this text verbatim
        self.qa: dict[str, str] = {}
        self.default_qa = "passed"
        self.deployments: dict[str, Deployment] = {}
        self.deploy_fails = False
        self.deploy_seconds = 0.5
        self.production_healthy = True
        self.production_version: str | None = self._initial_version
        self.docs: dict[str, dict[str, dict]] = {}
        self.portals_down: set[str] = set()
        self.notifications: list[dict] = []
        self.channels_down: set[str] = set()
        self.requests: list[dict] = []
        self.mail: list[dict] = []  # what the SMTP server accepted, raw
        self.refused_recipients: set[str] = set()  # answered 550 at RCPT
        self._ids = itertools.count(1)
        self.oems = {
            oem_id: OemInstance(oem_id=oem_id, version=self._initial_version, commands=commands)
            for oem_id, commands in self._oem_commands.items()
        }

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    # -- OEM instances over SSH -------------------------------------------------------
    def execute(self, oem_id: str, command: str) -> CommandResult:
        instance = self.oems[oem_id]
        action, release = instance.run(command)
        entry = {"at": pendulum.now("UTC").isoformat(), "command": command, "action": action, "release": release}
        instance.history.append(entry)
        if action == "version":
            if instance.version is None:
                return CommandResult(1, stderr="no platform installed\n")
            return CommandResult(0, stdout=f"{instance.version}\n")
        if action == "install":
            if instance.install_failures > 0:
                instance.install_failures -= 1
                entry["outcome"] = "transient_failure"
                return CommandResult(TRANSIENT_EXIT, stderr=f"install {release}: package mirror timed out, try again\n")
            previous, instance.version = instance.version, release
            instance.healthy = not instance.break_on_install
            entry["outcome"] = "installed"
            return CommandResult(0, stdout=f"installed {release} (was {previous})\n")
        if action == "rollback":
            previous, instance.version = instance.version, release
            instance.healthy = True
            entry["outcome"] = "rolled_back"
            return CommandResult(0, stdout=f"rolled back to {release} (was {previous})\n")
        return CommandResult(127, stderr=f"{command.split()[0] if command.split() else command}: command not found\n")

    # -- the OEMs' mail server -----------------------------------------------------------
    def receive_mail(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> dict:
        entry = {
            "id": self.next_id("mail"),
            "received_at": pendulum.now("UTC").isoformat(),
            "mail_from": mail_from,
            "rcpt_tos": rcpt_tos,
            # whose mailbox it landed in: the OEMs whose addresses (config/oems.yaml email) it reached
            "oems": sorted({self.mailboxes[r.lower()] for r in rcpt_tos if r.lower() in self.mailboxes}),
            "raw": content.decode("utf-8", errors="replace"),
        }
        self.mail.append(entry)
        return entry

    def snapshot(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "qa": self.qa,
            "deployments": {k: {**asdict(d), "status": d.status} for k, d in self.deployments.items()},
            "production": {"version": self.production_version, "healthy": self.production_healthy},
            "docs": self.docs,
            "notifications": self.notifications,
            "oems": {
                k: {
                    "version": o.version,
                    "healthy": o.healthy,
                    "install_failures": o.install_failures,
                    "break_on_install": o.break_on_install,
                    "history": o.history,
                }
                for k, o in self.oems.items()
            },
            "requests": self.requests,
            "mail": self.mail,
        }
