"""Test data and worlds shared by several test modules: one place, instead of test modules
importing each other."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pendulum

from release_pipeline.models import Change, ChangeType, DeliveryStatus, FeedbackCategory
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import load_calendar
from release_pipeline.tokens import issue_token

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


# -- the release database ------------------------------------------------------------------
MERGED = pendulum.datetime(2026, 11, 20, 12, tz="UTC")


def change(change_id: str, type_: ChangeType = ChangeType.FEATURE, breaking: bool = False) -> Change:
    return Change(
        id=change_id,
        type=type_,
        component="connectors",
        title=f"Title of {change_id}",
        description=f"What {change_id} does",
        breaking=breaking,
        merged_at=MERGED,
    )


def cut(repo, calendar, release_id: str, *change_ids: str) -> bool:
    release = calendar.release_by_id(release_id)
    return repo.record_release(
        release,
        [change(c) for c in change_ids],
        changes_since=calendar.previous(release).at,
        changes_until=release.at,
        actor="test",
    )


# -- the change feed (the simulator's) ------------------------------------------------------
def feed_changes(release_id: str = "2026.24", count: int = 3) -> list[dict]:
    """Changes merged inside the release's window; the first one is breaking."""
    train = load_calendar()
    release = train.release_by_id(release_id)
    start = train.previous(release).at
    return [
        {
            "id": f"CHG-{release_id[-2:]}{n}",
            "type": ["component", "feature", "fix"][n % 3],
            "component": "runtime" if n == 0 else "connectors",
            "title": f"Change {n} of {release_id} in the AVA Platform",
            "description": "Works across the AVA Integration Platform.",
            "breaking": n == 0,
            "merged_at": start.add(days=1 + n).in_timezone("UTC").isoformat(),
        }
        for n in range(count)
    ] + [  # merged after the release: belongs to the next one
        {
            "id": "CHG-LATE",
            "type": "fix",
            "component": "x",
            "title": "late",
            "description": "",
            "merged_at": release.at.add(hours=1).in_timezone("UTC").isoformat(),
        }
    ]


# -- the OEM portal ----------------------------------------------------------------------------
class World:
    """nimbus signs off 2026.24; orbitel signs off 2026.24 and, alone, 2026.25."""

    def __init__(self, repo, calendar):
        self.repo = repo
        cut(repo, calendar, "2026.22")
        cut(repo, calendar, "2026.24", "CHG-1", "CHG-2")
        cut(repo, calendar, "2026.25", "CHG-3")
        repo.request_approvals("2026.24", ["nimbus", "orbitel"])
        repo.request_approvals("2026.25", ["orbitel"])
        repo.set_installed_version("orbitel", "2026.22")
        repo.upsert_delivery("orbitel", "2026.22", status=DeliveryStatus.INSTALLED, from_release_id="2026.20")
        repo.add_regression_report(
            oem_id="orbitel",
            release_id="2026.22",
            description="Orbitel secret regression",
            reported_by="olga@orbitel",
            channel="portal",
            at=MERGED,
        )
        repo.record_feedback(
            oem_id="orbitel",
            category=FeedbackCategory.USE_CASES,
            title="Orbitel secret project",
            body="confidential",
            submitted_by="olga@orbitel",
            channel="portal",
        )
        repo.save_roadmap_snapshot(
            horizon=["2026.25", "2026.26"],
            items=[
                {
                    "rank": 1,
                    "id": "sso",
                    "public": True,
                    "title": "SSO for the AVA Integration Platform designer",
                    "description": "Sign in to the AVA Integration Platform designer with your identity provider.",
                    "kind": "functionality",
                    "component": None,
                    "target_release_id": "2026.25",
                    "planned_for": "2026.26",
                    "public_reason": "required by 1 customer; planned for 2026.26",
                    "reason": "required by 1 OEM (silver); score 6",
                    "oems": ["orbitel"],
                    "asked_by": 1,
                    "feedback_ids": [1],
                    "score": 6.0,
                },
                {  # from before items were the vendor's words: an OEM's own title
                    "rank": 2,
                    "id": "fb-orbitel-secret-project",
                    "title": "Orbitel secret project",
                    "kind": "functionality",
                    "component": None,
                    "target_release_id": None,
                    "public_reason": "required by 1 customer",
                    "oems": ["orbitel"],
                    "score": 1.0,
                },
            ],
            changes={
                "first": False,
                "added": [{"id": "sso", "title": "SSO", "public": True}],
                "removed": [{"id": "fb-x", "title": "Orbitel secret project"}],
                "moved": [],
            },
            run_id="r1",
        )
        self.tokens = {
            oem: issue_token(repo, oem_id=oem, label=f"user@{oem}", created_by="test").token
            for oem in ("nimbus", "orbitel")
        }
        from release_train_airflow.portal import create_app  # only where a portal is built

        self.app = create_app(repo)

    def client(self, oem: str | None = None, *, browser: bool = False) -> TestClient:
        with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        client = TestClient(self.app, follow_redirects=False)
        if oem and browser:
            assert client.post("/login", data={"token": self.tokens[oem]}).status_code == 303
        elif oem:
            client.headers["Authorization"] = f"Bearer {self.tokens[oem]}"
        return client

    def state(self) -> tuple:
        """Everything an endpoint could write: decisions, feedback, regressions and rollbacks."""
        events = [tuple(e) for oem in ("nimbus", "orbitel") for c in ("CHG-1", "CHG-2", "CHG-3")
                  for e in self.repo.approval_history(oem, c)]  # fmt: skip
        rollbacks = [tuple(r) for r in self.repo.regression_reports()]
        rollbacks += [tuple(r) for r in self.repo.rollback_requests()]
        return events, [tuple(f) for f in self.repo.feedback()], rollbacks


# -- OEMs and the delivery cycle ---------------------------------------------------------
# cycle 2026.23-2026.24, installs Thu 3 Dec
BEFORE_INSTALL_DAY = pendulum.datetime(2026, 11, 28, 12, tz="UTC")


def make_oem(**fields) -> Oem:
    """A valid registry entry, with ``fields`` on top."""

    return Oem.model_validate(
        {
            "id": "acme",
            "display_name": "Acme Ltd",
            "brand_name": "Acme Cloud",
            "timezone": "Europe/Berlin",
            "tier": "gold",
            "docs_strategy": "ava",
            "feedback_cadence_weeks": 2,
            "maintenance_window": {"start": "00:00", "end": "00:00"},
            **fields,
        }
    )


# -- sign-off policies written into a test's copy of config/oems.yaml ------------------------
# two people sign each change off: Olga for QA, Pat for the product
TWO_OF_TWO = """    signoff_policy:
      approvers:
        - {name: Olga Berg, role: qa}
        - {name: Pat Kim, role: product}
      quorum: 2
"""


def with_policy(config: Path, oem: str, policy_yaml: str) -> None:
    """Give ``oem`` of the config copy ``policy_yaml`` (replacing any policy it had) as
    the last lines of its entry."""
    oems = config / "oems.yaml"
    text = oems.read_text()
    start = text.index(f"  - id: {oem}\n")
    end = text.find("\n  - id: ", start + 1)
    end = len(text) if end == -1 else end + 1
    entry = text[start:end].rstrip("\n") + "\n"
    if "signoff_policy:" in entry:
        entry = entry[: entry.index("    signoff_policy:")]
    oems.write_text(text[:start] + entry + policy_yaml + ("\n" if end < len(text) else "") + text[end:])


# -- one OEM delivery in process (DeliveryProcess over in-memory ports) -----------------------
INSTALL_DAY = pendulum.datetime(2026, 12, 3, 10, tz="Europe/Amsterdam").in_timezone("UTC")  # cycle 2026.23-2026.24


class FakeInstance:
    """An OEM instance in memory: the version it runs, its health, every command it ran
    (with the timeout it was given). ``install_exit`` fails the install command."""

    def __init__(self, version: str = "2026.22"):
        self.running, self.healthy, self.install_exit = version, True, 0
        self.ran: list[tuple[str, float]] = []
        self.unhealthy_polls = 0  # verification polls that find it still warming up

    def version(self, oem: Oem) -> str:
        return self.running

    def health(self, oem: Oem) -> tuple[bool, str]:
        if self.unhealthy_polls:
            self.unhealthy_polls -= 1
            return False, "503 warming up"
        return self.healthy, "ok" if self.healthy else "503 unhealthy"

    def run(self, oem: Oem, command: str, *, timeout: float):
        from release_pipeline.delivery_process import CommandResult

        self.ran.append((command, timeout))
        verb, release_id = command.split()[-2:]
        if verb == "install" and self.install_exit == 0 or verb == "rollback":
            self.running = release_id
        if verb == "rollback":  # as the simulator's instances: back on the old version, healthy
            self.healthy = True
        return CommandResult(command, self.install_exit if verb == "install" else 0, "", "")


class RecordingOutbox:
    """Every send in order, as (to, key, subject, lines); docs and sign-off requests too."""

    def __init__(self):
        self.sent: list[tuple[str, str, str, list[str]]] = []
        self.docs: list[tuple[str, str]] = []  # (installed, target) of each publication

    def tell_oem(self, oem, subject, lines, *, key, release_id) -> None:
        self.sent.append(("oem", key, subject, lines))

    def tell_oem_delivered(self, oem, subject, lines, *, key, installed, target, asked=None) -> None:
        self.sent.append(("oem", key, subject, lines))

    def alert_vendor(self, subject, lines, *, key) -> None:
        self.sent.append(("vendor", key, subject, lines))

    def ask_signoff(self, oem, release_id) -> None:
        self.sent.append(("oem", f"ask:{release_id}", "", []))

    def publish_docs(self, oem, *, installed, target, asked=None) -> str:
        self.docs.append((installed, target))
        return "published"

    def publish_rollback_docs(self, oem, *, rolled_back, back_to, request_id, lines) -> str:
        self.docs.append((rolled_back, back_to))
        return "published"

    def to(self, who: str) -> list[str]:
        return [key for to, key, _, _ in self.sent if to == who]


class DeliveryWorld:
    """acme runs 2026.22; 2026.23 (CHG-1) and 2026.24 (CHG-2, CHG-3) are in production
    and asked of it; the clock starts on install day of the cycle 2026.23-2026.24."""

    CHANGES = ("CHG-1", "CHG-2", "CHG-3")

    def __init__(self, repo, calendar, **oem_fields):
        from release_pipeline.models import ReleaseStatus

        self.repo, self.train = repo, calendar
        self.oem = make_oem(**oem_fields)
        self.instance, self.outbox = FakeInstance(), RecordingOutbox()
        self.now = INSTALL_DAY
        cut(repo, calendar, "2026.22")
        repo.set_installed_version("acme", "2026.22")
        cut(repo, calendar, "2026.23", "CHG-1")
        cut(repo, calendar, "2026.24", "CHG-2", "CHG-3")
        for release_id in ("2026.23", "2026.24"):
            repo.set_release_status(release_id, ReleaseStatus.QA_APPROVED, actor="qa")
            repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
            repo.request_approvals(release_id, ["acme"])

    def process(self, **fields):
        from release_pipeline.delivery_process import DeliveryProcess
        from release_pipeline.roadmap import RoadmapConfig

        return DeliveryProcess(
            repo=self.repo,
            train=self.train,
            oem=self.oem,
            instance=self.instance,
            outbox=self.outbox,
            clock=lambda: self.now,
            sleep=self.sleep,
            roadmap_config=RoadmapConfig(),
            **fields,
        )

    def sleep(self, seconds: float) -> None:
        self.now = self.now.add(seconds=seconds)

    def decide(self, decision: str, *change_ids: str, **kwargs):
        from release_pipeline.signoff import decide

        by_release = {"CHG-1": "2026.23", "CHG-2": "2026.24", "CHG-3": "2026.24"}
        ids = []
        for release_id in sorted({by_release[c] for c in change_ids or self.CHANGES}):
            ids += decide(
                self.repo,
                oem_id="acme",
                release_id=release_id,
                decision=decision,
                change_ids=[c for c in change_ids or self.CHANGES if by_release[c] == release_id],
                actor="ann@acme",
                channel="portal",
                comment=None if decision == "approved" else "breaks our SSO",
                **kwargs,
            )
        return ids

    def plan(self, run_id: str = "run-1", **kwargs) -> dict:
        return self.process().plan(run_id=run_id, **kwargs)
