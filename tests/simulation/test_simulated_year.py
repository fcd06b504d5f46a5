"""A simulated year of the release train: 14 delivery cycles on a controllable clock.

The real domain (calendar, sign-off rules, ``DeliveryProcess``, the same code the
``oem_delivery`` tasks call), the real release database (SQLite and PostgreSQL) and
the simulator's instances; only time is driven by the test. Hypothesis draws the
year's seed (printed on failure): changes merged every day (some of them reverts), the
scheduler down on a release day (the release is never cut), manual runs with no
parameters at random moments, QA rejections and failed deploys, an OEM enabled
mid-year, approvals early / while the gate waits / late / cycles later, rejections after
the gate, freezes over release days and install days, install failures and rollbacks.

The year keeps its own ledger of the world, and the invariants about what instances
run are computed from it, never through the product's queries: what was merged when,
what each OEM was asked and decided, and what each build holds. A build is cut from
main, so it holds every change merged before its cut, whatever became of the releases
before it (``build``); an instance moving from A to B newly runs what B holds and A
did not, less a change and its revert that both arrive (``newly_run``).

After every event the invariants hold:
(i) no instance runs a change its OEM was not asked about, or whose latest decision is
    not an approval (over change ids: carried changes of releases that never reached
    production included);
(ii) an OEM that approved a production release in full before install day runs it,
     or a newer one, once install day's window has been used;
(iii) no gate waits past its cycle;
(iv) every skip, rejection, rollback and postponement is recorded and told to the OEM
     and to the vendor exactly once;
(v) an OEM's docs portal matches the version its instance runs;
(vii) an instance only ever runs a release that reached the vendor production;
(viii) an install or rollback command runs inside the OEM's maintenance window and
     outside every freeze (the year's own reading of both);
(ix) the vendor is told of a skip, rejection or rollback before the OEM;
(vi) the forecast made a minute before install day (``release-train forecast``) is what
     the delivery then does, release and time, whenever neither the OEM's decisions nor
     the production releases changed in between (an install that fails on the instance
     is compared by the release it tried).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import random
from collections import Counter

import pendulum
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from release_pipeline import signoff
from release_pipeline.cut import cut as cut_release
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.delivery import GateVerdict, gate_verdict
from release_pipeline.delivery_process import CommandResult, DeliveryEnded, DeliveryFailed, DeliveryProcess
from release_pipeline.forecast import forecast
from release_pipeline.models import Change, ChangeType, Decision, DeliveryStatus, ReleaseStatus
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar
from release_pipeline.run_targets import NothingToActOn, release_due
from simulator.state import TRANSIENT_EXIT, SimulatorState
from tests.conftest import _truncate

CYCLES = 14
FIRST_CYCLE = 1  # the year starts with cycle 1; release 0 (the anchor) is what every instance runs
ANCHOR = dt.date(2030, 1, 3)  # a Thursday


ALWAYS = {"start": "00:00", "end": "00:00"}
WINDOWS = {  # the OEMs' maintenance windows, as the year reads them itself (timezone, days, start, end)
    "alpha": ("Europe/Berlin", None, "00:00", "00:00"),
    "beta": ("America/New_York", ("tue", "thu", "sat"), "22:00", "04:00"),
    "gamma": ("Australia/Sydney", ("sat", "sun"), "01:00", "05:00"),
    "delta": ("Asia/Tokyo", None, "00:00", "00:00"),
}


def in_window(oem_id: str, moment: pendulum.DateTime) -> bool:
    """The world's reading of an OEM's maintenance window: opened on one of its days at
    ``start``, closed at ``end`` (the next day when ``end`` is not after ``start``)."""
    zone, days, start, end = WINDOWS[oem_id]
    local = moment.in_timezone(zone)
    (h1, m1), (h2, m2) = (map(int, start.split(":")), map(int, end.split(":")))
    for opened_on in (local.subtract(days=1), local):
        if days is not None and opened_on.format("ddd").lower() not in days:
            continue
        opened = opened_on.set(hour=h1, minute=m1, second=0, microsecond=0)
        closes = opened.set(hour=h2, minute=m2)
        if closes <= opened:
            closes = closes.add(days=1)
        if opened <= local < closes:
            return True
    return False


def make_oems() -> dict[str, Oem]:
    base = {"tier": "gold", "docs_strategy": "ava", "feedback_cadence_weeks": 2}
    always = ALWAYS
    entries = [
        {"id": "alpha", "timezone": "Europe/Berlin", "maintenance_window": always},
        {
            "id": "beta",
            "timezone": "America/New_York",
            "maintenance_window": {"days": ["tue", "thu", "sat"], "start": "22:00", "end": "04:00"},
        },
        {
            "id": "gamma",
            "timezone": "Australia/Sydney",
            "maintenance_window": {"days": ["sat", "sun"], "start": "01:00", "end": "05:00"},
            "install_when_approved": True,
        },
        {"id": "delta", "timezone": "Asia/Tokyo", "maintenance_window": always},  # enabled mid-year
    ]
    return {
        e["id"]: Oem.model_validate({**base, "display_name": e["id"].title(), "brand_name": e["id"].title(), **e})
        for e in entries
    }


class Transient(Exception):
    """The instance asked to try again (Airflow retries the install task)."""


class SimInstance:
    def __init__(self, state: SimulatorState, world: Year):
        self.state, self.world = state, world

    def version(self, oem: Oem) -> str:
        return self.state.execute(oem.id, oem.commands.render("version")).stdout.strip()

    def health(self, oem: Oem) -> tuple[bool, str]:
        healthy = self.state.oems[oem.id].healthy
        return healthy, "ok" if healthy else "503 unhealthy"

    def run(self, oem: Oem, command: str, *, timeout: float) -> CommandResult:
        self.world.command_ran(oem.id, command)
        result = self.state.execute(oem.id, command)
        if result.exit_status == TRANSIENT_EXIT:
            raise Transient(result.stderr)
        return CommandResult(command, result.exit_status, result.stdout, result.stderr)


class SimOutbox:
    """Counts every send by key: the process must never send the same thing twice,
    nor tell one outcome under two keys."""

    def __init__(self, world: Year):
        self.world = world
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []  # every send, in the order made
        self.docs: dict[str, str] = {}

    def _sent(self, key: str) -> None:
        self.calls[key] += 1
        self.order.append(key)

    def tell_oem(self, oem, subject, lines, *, key, release_id) -> None:
        self._sent(f"oem:{key}")

    def tell_oem_delivered(self, oem, subject, lines, *, key, installed, target, asked=None) -> None:
        self._sent(f"oem:{key}")

    def alert_vendor(self, subject, lines, *, key) -> None:
        self._sent(f"vendor:{key}")

    def ask_signoff(self, oem, release_id) -> None:
        self.calls[f"oem:release_notes:{release_id}:{oem.id}"] += 1
        self.world.oem_asked(oem.id, release_id)

    def publish_docs(self, oem, *, installed, target, asked=None) -> str:
        self.calls[f"docs:{oem.id}:{target}"] += 1
        self.docs[oem.id] = target
        return "published"


class Year:
    """One generated year, driven as a discrete-event simulation."""

    def __init__(self, repo: ReleaseRepository, rng: random.Random):
        self.repo, self.rng = repo, rng
        self.freezes = self._freezes()
        self.train = ReleaseCalendar(
            CalendarConfig(
                timezone="Europe/Amsterdam",
                anchor=ANCHOR,
                release_time="10:00",
                freeze_windows=[{"name": f"Freeze {i}", "start": s, "end": e} for i, (s, e) in enumerate(self.freezes)],
            )
        )
        self.oems = make_oems()
        self.enabled = {"alpha", "beta", "gamma"}
        self.enable_delta_at = FIRST_CYCLE + rng.randrange(2, CYCLES - 3)
        base = self.train.release(0)
        self.state = SimulatorState({o: oem.commands for o, oem in self.oems.items()}, base.id)
        self.outbox = SimOutbox(self)
        self.now = base.at.in_timezone("UTC")
        self.queue: list = []
        self.seq = itertools.count()
        self.baseline: dict[str, str] = dict.fromkeys(self.oems, base.id)
        self.outbox.docs = dict.fromkeys(self.oems, base.id)
        self.release_of: dict[str, str] = {}  # change -> the release the product cut it into
        # the world's own ledger: every merge (id, when, the change it reverts)
        self.merges = self._merges(base.at)
        self.world_status: dict[str, str] = {base.id: ReleaseStatus.DEPLOYED}  # what became of each cut
        self.asked: dict[tuple[str, str], pendulum.DateTime] = {}  # (oem, change) -> when first asked
        self.seen_version = dict.fromkeys(self.oems, base.id)
        self.seen: Counter[str] = Counter()  # what the year exercised
        self.decided: dict[tuple[str, str], tuple[Decision, pendulum.DateTime]] = {}  # (oem, change) -> latest
        self.runs: dict[str, dict] = {}
        self.outcomes: list[tuple[str, str, int, str]] = []
        self.violations: list[str] = []
        self.checked: dict[str, tuple] = {}
        self.decisions_made: Counter[str] = Counter()
        self.forecasts: dict[str, dict] = {}  # oem -> the forecast before its install day, and what it saw
        self.forecasts_checked: Counter[str] = Counter()  # agreed | changed (not comparable)
        repo.record_baseline_release(base, actor="sim", reason="every instance starts here")
        for oem_id in self.oems:
            repo.set_installed_version(oem_id, base.id, at=self.now)

    def _merges(self, start: pendulum.DateTime) -> list[Change]:
        """Changes merged into main over the year, a few a day; about one in ten reverts a
        change merged in the three weeks before it (the same change is reverted once)."""
        merges: list[Change] = []
        reverted: set[str] = set()
        for day in range(7 * 2 * 2 * (CYCLES + 2)):
            for _ in range(self.rng.choice([0, 0, 1, 1, 2])):
                at = start.add(days=day, minutes=self.rng.randrange(1, 24 * 60))
                recent = [
                    c.id for c in merges if c.id not in reverted and c.merged_at < at and (at - c.merged_at).days < 21
                ]
                target = self.rng.choice(recent) if recent and self.rng.random() < 0.1 else None
                if target:
                    reverted.add(target)
                change_id = f"W{len(merges) + 1}"
                title = f"Revert {target}" if target else f"Change {change_id}"
                merges.append(Change(change_id, ChangeType.FIX, "core", title, "", False, at, reverts=target))
        merges.sort(key=lambda c: c.merged_at)
        return merges

    def feed(self, since: dt.datetime, until: dt.datetime) -> list[Change]:
        """The change source: what was merged in ``[since, until)``."""
        return [c for c in self.merges if since <= c.merged_at < until]

    def build(self, release_id: str) -> set[str]:
        """What the build of ``release_id`` holds: everything merged before its cut."""
        cut_at = self.train.release_by_id(release_id).at
        return {c.id for c in self.merges if c.merged_at < cut_at}

    def newly_run(self, running: str, target: str) -> set[str]:
        """What an instance moving from ``running`` to ``target`` newly runs: what the
        target's build holds and the running one's did not, less each change and its
        revert that arrive together (replayed in merge order)."""
        arriving = self.build(target) - self.build(running)
        kept: list[str] = []
        for change in (c for c in self.merges if c.id in arriving):
            if change.reverts in kept:
                kept.remove(change.reverts)
            else:
                kept.append(change.id)
        return set(kept)

    def command_ran(self, oem_id: str, command: str) -> None:
        """(viii) an install or rollback runs inside the OEM's window and outside every
        freeze, by the world's own reading of both."""
        if "version" in command:
            return
        day = self.now.in_timezone("Europe/Amsterdam").date()
        if any(start <= day <= end for start, end in self.freezes):
            self.violations.append(f"{self.now}: {oem_id} ran {command!r} inside a freeze")
        if not in_window(oem_id, self.now):
            self.violations.append(f"{self.now}: {oem_id} ran {command!r} outside its maintenance window")
        self.seen["command checked"] += 1

    def _freezes(self) -> list[tuple[dt.date, dt.date]]:
        """Two or three freezes of 2-10 days somewhere in the year (over release and install days alike)."""
        freezes = []
        for _ in range(self.rng.randint(2, 3)):
            start = ANCHOR + dt.timedelta(days=self.rng.randrange(20, 7 * 2 * 2 * CYCLES))
            freezes.append((start, start + dt.timedelta(days=self.rng.randint(2, 10))))
        return freezes

    def process(self, oem_id: str) -> DeliveryProcess:
        return DeliveryProcess(
            repo=self.repo,
            train=self.train,
            oem=self.oems[oem_id],
            instance=SimInstance(self.state, self),
            outbox=self.outbox,
            clock=lambda: self.now,
            sleep=lambda _seconds: None,
            verify_grace=dt.timedelta(0),
        )

    # -- the timeline --------------------------------------------------------------------------
    def at(self, when, action, *args) -> None:
        when = pendulum.parse(when) if isinstance(when, str) else pendulum.instance(when)
        heapq.heappush(self.queue, (when.in_timezone("UTC"), next(self.seq), action, args))

    def run(self) -> None:
        for k in range(FIRST_CYCLE, FIRST_CYCLE + CYCLES):
            cycle = self.train.delivery_cycle(k)
            for release in cycle.window.releases:
                self.at(release.at, self.cut, release.index)
            self.at(cycle.release.at.add(minutes=1), self.start_cycle, k)
            self.at(cycle.install_at.subtract(minutes=1), self.forecast_install, k)
            self.at(cycle.install_at, self.install_day, k)
            if self.rng.random() < 0.5:  # someone triggers production_release with no parameters
                self.at(cycle.release.at.add(hours=self.rng.randrange(1, 24 * 14)), self.manual_run)
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            self.now = max(self.now, when)
            action(*args)
            self.check()

    # -- the vendor's side -----------------------------------------------------------------------
    def cut(self, index: int) -> None:
        """The scheduled run of ``production_release``; now and then the scheduler is down
        on the release day and the release is never cut (the next cut takes its changes)."""
        if self.rng.random() < 0.08:
            self.seen["never cut"] += 1
            return
        self.cut_and_ship(self.train.release(index))

    def manual_run(self) -> None:
        """A manual run with no parameters: acts on the release due now (L5)."""
        statuses = {row.id: str(row.status) for row in self.repo.releases()}
        try:
            choice = release_due(self.train, self.now, statuses, baselines=self.repo.baseline_ids())
        except NothingToActOn:
            return
        self.seen["manual run"] += 1
        if choice.key not in statuses:
            self.cut_and_ship(self.train.release_by_id(choice.key))
        elif statuses[choice.key] == ReleaseStatus.DEPLOYED:
            self.open_signoff(choice.key)

    def cut_and_ship(self, release) -> None:
        if not cut_release(self.repo, self.train, release, self.feed, actor="sim"):
            return
        changes = self.repo.changes_of([release.id])
        self.release_of.update((c.id, release.id) for c in changes)
        if not changes:
            self.world_status[release.id] = ReleaseStatus.EMPTY
            return
        roll = self.rng.random()
        if roll < 0.12:
            self.world_status[release.id] = ReleaseStatus.QA_REJECTED
            self.repo.set_release_status(release.id, ReleaseStatus.QA_REJECTED, actor="qa")
            return
        if roll < 0.2:
            self.world_status[release.id] = ReleaseStatus.DEPLOY_FAILED
            self.repo.set_release_status(release.id, ReleaseStatus.DEPLOY_FAILED, actor="sim")
            return
        # a release dated in a freeze goes to production right after it (production_release's rule)
        self.at(self.train.deploy_moment(release), self.deploy, release.id)

    def deploy(self, release_id: str) -> None:
        self.world_status[release_id] = ReleaseStatus.DEPLOYED
        self.repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="sim")
        self.open_signoff(release_id)

    def open_signoff(self, release_id: str) -> None:
        """``open_signoff`` and the OEMs' notes: each OEM asked once per release."""
        for oem_id in sorted(self.enabled):
            if self.repo.request_approvals(release_id, [oem_id]):
                self.outbox.ask_signoff(self.oems[oem_id], release_id)

    # -- the OEMs' side ------------------------------------------------------------------------------
    def oem_asked(self, oem_id: str, release_id: str) -> None:
        """An OEM asked to sign off a release decides on its own time (or never) on what
        its message lists: the release's changes and those it carries."""
        changes = [c.id for c in self.repo.changes_shipped_by(release_id)]
        for change in changes:
            self.asked.setdefault((oem_id, change), self.now)
        if not changes:
            return
        cycle = self.train.delivery_cycle_at(self.now)
        install_at = cycle.install_at if cycle.install_at > self.now else self.now
        behaviour = self.rng.choice(["early", "early", "early", "gate", "late", "much_later", "reject", "reject_after"])
        early = self.now.add(hours=self.rng.randint(1, 48))
        if behaviour in ("early", "reject", "reject_after"):
            for change in changes:
                self.at(early, self.decide, oem_id, change, Decision.APPROVED)
        elif behaviour == "gate":
            for change in changes:
                self.at(
                    install_at.add(minutes=self.rng.randint(1, 600)), self.decide, oem_id, change, Decision.APPROVED
                )
        elif behaviour in ("late", "much_later"):  # a build is cumulative: until then nothing newer installs
            days = (2, 9) if behaviour == "late" else (20, 50)
            for change in changes:
                self.at(install_at.add(days=self.rng.randint(*days)), self.decide, oem_id, change, Decision.APPROVED)
        if behaviour == "reject":
            self.at(early.add(minutes=5), self.decide, oem_id, changes[0], Decision.REJECTED)
        if behaviour == "reject_after":  # after the gate opened: caught by the last look
            self.runs.setdefault(f"after_gate:{oem_id}", []).append(changes[0])
        if behaviour in ("reject", "reject_after") and self.rng.random() < 0.85:  # fixed, approved again
            self.at(install_at.add(days=10), self.decide, oem_id, changes[0], Decision.APPROVED)

    def decide(self, oem_id: str, change_id: str, decision: Decision) -> None:
        release_id = self.release_of[change_id]
        try:
            signoff.decide(
                self.repo,
                oem_id=oem_id,
                release_id=release_id,
                decision=decision,
                change_ids=[change_id],
                actor=f"{oem_id}.user",
                channel="portal",
                comment="found a problem" if decision == Decision.REJECTED else None,
            )
        except signoff.SignoffError:
            return  # closed (installing or installed) or the same decision again: refused, nothing recorded
        self.decided[(oem_id, change_id)] = (decision, self.now)
        self.decisions_made[oem_id] += 1
        run = self.runs.get(oem_id)
        if run and run.get("gate_open"):
            self.gate_check(oem_id)

    # -- deliveries ------------------------------------------------------------------------------------
    def start_cycle(self, k: int) -> None:
        if k == self.enable_delta_at:
            self.enabled.add("delta")
        for oem_id in sorted(self.enabled):
            self.start_run(k, oem_id)

    def start_run(self, k: int, oem_id: str) -> None:
        """The cycle's run of the OEM's delivery DAG; one run at a time (max_active_runs):
        a run whose install still waits for a window holds the next one back."""
        if "plan" in self.runs.get(oem_id, {}):
            self.at(self.now.add(hours=1), self.start_run, k, oem_id)
            return
        try:
            started = self.process(oem_id).plan(run_id=f"{oem_id}:{k}", preview=True)
        except (DeliveryEnded, DeliveryFailed) as ended:
            self.violations.append(f"cycle {k} {oem_id}: the run's start ended it: {ended}")
            return
        self.runs[oem_id] = {"k": k, "started": started}

    def install_day(self, k: int) -> None:
        for oem_id in sorted(self.enabled):
            run = self.runs.get(oem_id)
            if not run or run["k"] != k:
                continue
            steps = self.process(oem_id)
            try:
                aimed = steps.plan(run_id=f"{oem_id}:{k}")
            except DeliveryEnded:
                self.runs.pop(oem_id)
                self.delivered(oem_id, None)
                continue
            steps.withdraw(run["started"], aimed)
            next_cycle_starts = self.train.delivery_cycle(k + 1).release.at
            if pendulum.parse(aimed["deadline"]) > next_cycle_starts:  # (iii)
                self.violations.append(f"cycle {k} {oem_id}: the gate may wait until {aimed['deadline']}")
            run.update(aimed=aimed, gate_open=True, expected=self.expected_target(oem_id, aimed))
            self.at(aimed["settle_at"], self.gate_check, oem_id)
            self.at(aimed["deadline"], self.gate_check, oem_id)
            self.gate_check(oem_id)

    # -- (vi) the forecast against what the delivery does ----------------------------------------
    def _seen_by(self, oem_id: str) -> tuple:
        return self.decisions_made[oem_id], frozenset(self.repo.release_ids([ReleaseStatus.DEPLOYED]))

    def forecast_install(self, k: int) -> None:
        for oem_id in sorted(self.enabled):
            ahead = forecast(self.repo, self.train, self.oems[oem_id], self.now)
            if ahead.cycle_key != self.train.delivery_cycle(k).key:
                self.violations.append(f"cycle {k} {oem_id}: the forecast looks at cycle {ahead.cycle_key}")
            self.forecasts[oem_id] = {"k": k, "forecast": ahead, "seen": self._seen_by(oem_id)}

    def delivered(self, oem_id: str, release_id: str | None, *, tried: bool = False) -> None:
        """What the delivery of the OEM's current cycle did: installed ``release_id`` (or
        tried to: ``tried``), or nothing (None). Compared with the forecast (vi)."""
        said = self.forecasts.pop(oem_id, None)
        if said is None:
            return
        if said["seen"] != self._seen_by(oem_id):
            self.forecasts_checked["changed"] += 1
            return
        ahead = said["forecast"]
        if ahead.installs != release_id:
            self.violations.append(
                f"cycle {said['k']} {oem_id}: forecast {ahead.installs!r} ({ahead.outcome}), "
                f"the delivery {'tried' if tried else 'installed'} {release_id!r}"
            )
        elif release_id is not None and not tried and self.now != ahead.install_at:
            self.violations.append(f"cycle {said['k']} {oem_id}: forecast {ahead.install_at}, installed {self.now}")
        self.forecasts_checked["agreed"] += 1

    def gate_check(self, oem_id: str) -> None:
        run = self.runs.get(oem_id)
        if not run or not run.get("gate_open"):
            return
        aimed, steps = run["aimed"], self.process(oem_id)
        verdict = gate_verdict(
            steps.assess(aimed["installed"], aimed["aim"]),
            now=self.now,
            settle_at=pendulum.parse(aimed["settle_at"]),
            deadline=pendulum.parse(aimed["deadline"]),
        )
        if verdict == GateVerdict.WAIT:
            return
        run["gate_open"] = False
        try:
            run["plan"] = steps.settle(aimed)
        except DeliveryEnded:
            self.note_outcome(oem_id, aimed)
            self.runs.pop(oem_id)
            self.delivered(oem_id, None)
            return
        if aimed["target"] != run["plan"]["target"]:
            self.note_outcome(oem_id, aimed)
        for change in self.runs.pop(f"after_gate:{oem_id}", []):
            self.decide(oem_id, change, Decision.REJECTED)
        if self.rng.random() < 0.12:
            self.state.oems[oem_id].break_on_install = True  # the next install leaves it unhealthy
        if self.rng.random() < 0.15:
            self.state.oems[oem_id].install_failures = 1
        self.at(self.oems[oem_id].next_maintenance_opening(self.now), self.install, oem_id)

    def install(self, oem_id: str) -> None:
        run, steps = self.runs.pop(oem_id), self.process(oem_id)
        plan = run["plan"]
        try:
            for attempt in range(4):  # the install task's retries
                try:
                    log = steps.install(plan)
                    break
                except Transient:
                    if attempt == 3:
                        raise
            try:
                steps.verify(plan, log)
            except DeliveryFailed:
                with contextlib.suppress(DeliveryFailed):
                    steps.recover(plan)
                self.note_outcome(oem_id, plan)
                self.delivered(oem_id, plan["target"], tried=True)
                return
            steps.publish_docs(plan)
            steps.notify_delivered(plan)
            self.delivered(oem_id, plan["target"])
        except DeliveryEnded:
            self.note_outcome(oem_id, plan)
            self.delivered(oem_id, None)
            return
        finally:
            self.state.oems[oem_id].break_on_install = False
        self.check_expected(oem_id, run)

    # -- the invariants ---------------------------------------------------------------------------------
    def expected_target(self, oem_id: str, aimed: dict) -> str | None:
        """(ii): the newest release in production whose build the OEM approved in full
        (every change it newly brings, by the latest decision) before install day, as the
        world saw it."""
        best = None
        deployed = sorted(
            r for r, status in self.world_status.items()
            if status == ReleaseStatus.DEPLOYED and aimed["installed"] < r <= aimed["aim"]
        )  # fmt: skip
        for release_id in deployed:
            for change in self.newly_run(aimed["installed"], release_id):
                decision = self.decided.get((oem_id, change))
                if decision is None or decision[0] != Decision.APPROVED or decision[1] >= self.now:
                    return best
            best = release_id
        return best

    def check_expected(self, oem_id: str, run: dict) -> None:
        expected = run.get("expected")
        if expected is None:
            return
        rejected_later = any(
            d == Decision.REJECTED and at >= pendulum.parse(run["aimed"]["install_at"])
            for (o, _), (d, at) in self.decided.items()
            if o == oem_id
        )
        running = self.state.oems[oem_id].version
        if running < expected and not rejected_later:
            self.violations.append(f"{oem_id}: approved {expected} in full before install day, runs {running}")

    def note_outcome(self, oem_id: str, plan: dict) -> None:
        row = self.repo.delivery(oem_id, plan["target"])
        self.outcomes.append((oem_id, plan["target"], row.attempt, row.status))

    def check(self) -> None:
        for oem_id, instance in self.state.oems.items():
            running, before = instance.version, self.seen_version[oem_id]
            # (i) every change the instance newly runs was asked of its OEM and is approved
            # (its latest decision), by the world's own ledger
            if running != before:
                self.seen_version[oem_id] = running
                # (vii) an instance only ever runs a release that reached production
                if self.world_status.get(running) != ReleaseStatus.DEPLOYED:
                    self.violations.append(f"{self.now}: {oem_id} runs {running} ({self.world_status.get(running)})")
                if running > before:
                    self.seen["installed change"] += bool(self.newly_run(before, running))
                    for change in sorted(self.newly_run(before, running)):
                        decision = self.decided.get((oem_id, change), (None, None))[0]
                        if (oem_id, change) not in self.asked or decision != Decision.APPROVED:
                            self.violations.append(
                                f"{self.now}: {oem_id} runs {running} with {change} "
                                f"({'asked' if (oem_id, change) in self.asked else 'never asked'}, {decision})"
                            )
                        if (
                            self.release_of.get(change, running) < running
                            and self.world_status.get(self.release_of.get(change, "")) != ReleaseStatus.DEPLOYED
                        ):
                            self.seen["installed carried change"] += 1
            # (v) the docs portal shows what runs
            if self.outbox.docs[oem_id] != running:
                self.violations.append(f"{self.now}: {oem_id} runs {running}, its docs show {self.outbox.docs[oem_id]}")
        # (iv) nothing told twice
        self.violations.extend(f"sent {n} times: {key}" for key, n in self.outbox.calls.items() if n > 1)

    def check_outcomes_told(self) -> None:
        """(iv) every skip, rejection, rollback, postponement: recorded, told to both, once."""
        keys = {"skipped": "skipped", "rejected": "rejected", "rolled_back": "failed", "failed": "failed"}
        for oem_id, target, attempt, status in self.outcomes:
            if status not in keys:
                self.violations.append(f"{oem_id} {target}#{attempt}: outcome recorded as {status}")
                continue
            what = keys[status]
            for side, key in (("oem", what), ("vendor", f"{what}_vendor")):
                if self.outbox.calls[f"{side}:delivery:{key}:{oem_id}:{target}:{attempt}"] != 1:
                    self.violations.append(f"{oem_id} {target}#{attempt} {status}: not told to the {side} once")
            # (ix) the vendor hears of it before the OEM does
            told = [f"{side}:delivery:{key}:{oem_id}:{target}:{attempt}" for side, key in
                    (("vendor", f"{what}_vendor"), ("oem", what))]  # fmt: skip
            if all(k in self.outbox.order for k in told) and self.outbox.order.index(told[0]) > self.outbox.order.index(
                told[1]
            ):
                self.violations.append(f"{oem_id} {target}#{attempt} {status}: the OEM was told before the vendor")


def simulate_year(url: str, seed: int) -> tuple[Year, ReleaseRepository]:
    """One generated year on a cleared release database; fails on any broken invariant."""
    _reset(url)
    repo = ReleaseRepository.from_url(url)
    year = Year(repo, random.Random(seed))
    year.run()
    year.check_outcomes_told()
    assert year.violations == [], f"seed {seed}: {year.violations[:10]}"
    return year, repo


# a seed does not get simpler by shrinking: the failing seed is reported as drawn
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_simulated_year_keeps_every_promise(release_db_url, seed):
    note(f"year seed: {seed}")
    year, repo = simulate_year(release_db_url, seed)
    try:
        assert Counter(d.status for d in repo.deliveries())["installed"] > 0
        assert year.forecasts_checked["agreed"] > 0, year.forecasts_checked  # (vi) was put to the test
        # the OEM enabled mid-year was asked for what reached production before it joined (R2)
        before = {
            r
            for r in repo.release_ids([ReleaseStatus.DEPLOYED])
            if r < year.train.delivery_cycle(year.enable_delta_at).release.id
        }
        asked = {
            k.split(":")[2] for k in year.outbox.calls if k.startswith("oem:release_notes:") and k.endswith(":delta")
        }
        assert before & asked, (sorted(before), sorted(asked))
    finally:
        repo.engine.dispose()


def _reset(url: str) -> None:
    if url.startswith("sqlite"):
        from sqlalchemy import text

        from release_pipeline.db import connect
        from release_pipeline.db.schema import metadata

        engine = connect(url)
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(text(f'DELETE FROM "{table.name}"'))
        engine.dispose()
    else:
        _truncate(url)


def test_the_simulation_covers_every_kind_of_outcome(tmp_path):
    """Over a few seeded years, every path the invariants guard is taken at least once
    (a property of the generator, so one database is enough)."""
    from release_pipeline.db import connect
    from release_pipeline.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'release.db'}"
    engine = connect(url)
    upgrade(engine)
    engine.dispose()
    seen: Counter[str] = Counter()
    for seed in range(3):
        year, repo = simulate_year(url, seed)
        seen.update(status for *_, status in year.outcomes)
        seen.update(str(r.status) for r in repo.releases())
        seen.update(year.seen)
        seen["reverts"] += sum(c.reverts is not None for c in year.merges)
        repo.engine.dispose()
    for kind in (DeliveryStatus.SKIPPED, DeliveryStatus.REJECTED, DeliveryStatus.ROLLED_BACK):
        assert seen[kind] > 0, seen
    for kind in (ReleaseStatus.QA_REJECTED, ReleaseStatus.DEPLOY_FAILED):
        assert seen[kind] > 0, seen
    # the ledger's paths: releases never cut, manual runs, carried changes installed, reverts
    for kind in ("never cut", "manual run", "installed carried change", "reverts"):
        assert seen[kind] > 0, seen
