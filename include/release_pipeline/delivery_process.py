"""One OEM delivery, step by step, over ports: the Airflow tasks of
``oem_delivery__<oem>`` and the simulated year (tests/simulation) run this same code
with different adapters for the instance and the outbox.

A delivery row per (OEM, release) tells the story: waiting (with what the run aims
at), installing, then installed / noop / rejected / skipped / rolled_back / failed /
not_attempted, with the reason in ``detail``. Every outcome that ends a try is
recorded and told to the vendor and (unless nothing concerns it) the OEM, once per
attempt: the messages and the install are keyed by the delivery's attempt number,
so a rerun after a rollback installs again and says so again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pendulum

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.deadlines import local_time, signoff_deadline
from release_pipeline.delivery import (
    DeliveryRefused,
    SignoffAssessment,
    UnknownInstanceVersion,
    aim,
    assess,
    plan_delivery,
)
from release_pipeline.idempotency import perform_once
from release_pipeline.ledger import carrier, net
from release_pipeline.models import DeliveryStatus, ReleaseStatus, RollbackStatus
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import DeliveryCycle, ReleaseCalendar, UnknownRelease
from release_pipeline.roadmap import RoadmapConfig, asked_for, load_roadmap_config, planned_items
from release_pipeline.rollbacks import RollbackRequest, decision_message, finish, request_of, withdraw_approvals
from release_pipeline.run_targets import never_cut, unsettled
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy
from release_pipeline.waves import (
    POSTPONED_REASON,
    Halt,
    blocking,
    halt,
    halt_cause_of_failure,
    halt_of,
    halts,
    postponed_key,
    postponed_message,
    vendor_alert,
    wave_install_day,
    wave_opening,
)

INSTALL_TIMEOUT_SECONDS = 1800  # one install command, end to end (the Celery stop grace is longer)
VERSION_TIMEOUT_SECONDS = 60
VERIFY_GRACE = dt.timedelta(minutes=5)
VERIFY_POLL_SECONDS = 10.0
# a delivery in one of these states is over; a new run of the same release is a new attempt
FINISHED = frozenset(
    {
        DeliveryStatus.INSTALLED,
        DeliveryStatus.NOOP,
        DeliveryStatus.REJECTED,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.ROLLED_BACK,
        DeliveryStatus.FAILED,
        DeliveryStatus.NOT_ATTEMPTED,
    }
)


class DeliveryEnded(Exception):
    """This run has nothing more to do; the outcome is recorded and told."""


class DeliveryFailed(Exception):
    """A step failed for good; recorded, and ``recover`` puts the instance back."""


class InstanceBusy(Exception):
    """Another install or rollback holds the instance's lock; try again shortly."""


class DeliveryHalted(Exception):
    """The target (or a release it carries) is halted for the OEM's wave: recorded and
    told; the delivery waits, and goes on in its next window once staff resume it."""

    def __init__(self, message: str, halt: Halt):
        super().__init__(message)
        self.halt = halt


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str

    def excerpt(self, limit: int = 2000) -> str:
        text = f"$ {self.command}\n[exit {self.exit_status}]\n{self.stdout}{self.stderr}"
        return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]


class Instance(Protocol):
    """An OEM's platform instance. Connection trouble raises (the caller retries)."""

    def version(self, oem: Oem) -> str: ...

    def health(self, oem: Oem) -> tuple[bool, str]: ...

    def run(self, oem: Oem, command: str, *, timeout: float) -> CommandResult: ...


class Outbox(Protocol):
    """What reaches people and portals; every send is idempotent by its key."""

    def tell_oem(self, oem: Oem, subject: str, lines: list[str], *, key: str, release_id: str) -> None: ...

    def tell_oem_delivered(
        self,
        oem: Oem,
        subject: str,
        lines: list[str],
        *,
        key: str,
        installed: str,
        target: str,
        asked: dict[str, list[dict]] | None = None,
    ) -> None:
        """``asked``: change id -> the roadmap items this OEM asked for (for its notes)."""

    def alert_vendor(self, subject: str, lines: list[str], *, key: str) -> None: ...

    def ask_signoff(self, oem: Oem, release_id: str) -> None: ...

    def publish_docs(self, oem: Oem, *, installed: str, target: str, asked: dict[str, list[dict]] | None = None) -> str:
        """Once per (OEM, target): docs are published only after a verified install."""

    def publish_rollback_docs(
        self, oem: Oem, *, rolled_back: str, back_to: str, request_id: int, lines: list[str]
    ) -> str:
        """Once per rollback request: the page of ``rolled_back`` says the instance is
        back on ``back_to`` (``lines``), above the notes of what it no longer runs."""


def signoff_of(
    repo: ReleaseRepository,
    oem_id: str,
    installed: str,
    until: str | None,
    policy: SignoffPolicy = DEFAULT_POLICY,
) -> SignoffAssessment:
    """The OEM's sign-off of what its instance on ``installed`` newly runs with ``until``
    (every change of the recorded releases in between, carried ones included) under its
    ``policy``, as the gate, the last look, the simulated year and ``release-train
    explain`` read it."""
    if until is None:
        return assess(installed=installed, aim=None, production=(), states=())
    return assess(
        installed=installed,
        aim=until,
        production=repo.production_release_ids(installed, until),
        states=repo.approval_states(oem_id, installed, until),
        policy=policy,
    )


def asked_for_lines(asked: dict[str, list[dict]]) -> list[str]:
    """One "you asked for this" line per roadmap item a delivery brings to the OEM that asked."""
    items: dict[str, list[str]] = {}
    for change_id, delivered in sorted(asked.items()):
        for item in delivered:
            items.setdefault(item["title"], []).append(change_id)
    return [
        f"You asked for this: {title} is now live ({', '.join(changes)})." for title, changes in sorted(items.items())
    ]


def _utc() -> pendulum.DateTime:
    return pendulum.now("UTC")


@dataclass
class DeliveryProcess:
    repo: ReleaseRepository
    train: ReleaseCalendar
    oem: Oem
    instance: Instance
    outbox: Outbox
    clock: Callable[[], pendulum.DateTime] = _utc
    sleep: Callable[[float], None] = time.sleep
    verify_grace: dt.timedelta = VERIFY_GRACE
    verify_poll_seconds: float = VERIFY_POLL_SECONDS
    install_timeout: float = INSTALL_TIMEOUT_SECONDS
    log: Callable[[str], None] = field(default=lambda _message: None)
    roadmap_config: RoadmapConfig | None = None  # None: config/roadmap.yaml

    # -- 1. aim (at the run's start, and again on install day) ---------------------------------
    def plan(
        self,
        *,
        run_id: str,
        target_override: str | None = None,
        approval_deadline: str | None = None,
        preview: bool = False,
        dry_run: bool = False,
        manual: bool = False,
    ) -> dict:
        """What the run aims at as things stand, checked before anything touches the
        instance, and recorded. The OEM is asked for any production change it was not
        asked about yet (enabled later, added after sign-off opened).

        ``preview`` (the run's start, when the cycle's release may still be in QA):
        nothing newer in production yet is no reason to stop, install day decides.
        ``dry_run``: checked and returned, nothing recorded, asked or installed.
        ``manual`` (a person's run): with no ``target_override`` it acts on what is in
        production now, and nothing newer than the instance there ends it at once."""
        repo, train, oem, now = self.repo, self.train, self.oem, self.clock()
        cycle = train.delivery_cycle_at(now)
        running = self.instance.version(oem)
        recorded = repo.installed_version(oem.id)
        production = self.production()
        if target_override:
            try:
                cycle = train.delivery_cycle_of(train.release_by_id(target_override))
            except UnknownRelease as exc:
                raise DeliveryFailed(f"OEM {oem.id!r}: param target_release: {exc}") from None
            target = target_override
        else:
            target = aim(production, installed=running, cycle_release=cycle.release.id) or running
        wave_day = wave_install_day(train, cycle, oem)  # install day, later for a later wave
        install_day = wave_day if wave_day > now else now
        if target_override:
            self.log(f"aims at {target}: given as param target_release")
        elif target != running:
            self.log(
                f"aims at {target}: the newest production release after the installed {running}, "
                f"up to {cycle.release.id}, the release of the cycle {cycle.key}"
            )
        if preview and target == running and not target_override:
            self._end_when_nothing_can_come(cycle, running, production, manual)
            return {
                "oem_id": oem.id,
                "run_id": run_id,
                "installed": running,
                "target": None,
                "install_at": install_day.in_timezone("UTC").isoformat(),
            }
        target_row = repo.release(target)
        delta = net(repo.changes_between(running, target))  # what the instance would newly run (L3, L4)
        try:
            checked = plan_delivery(
                oem_id=oem.id,
                target=target,
                target_status=target_row.status if target_row else None,
                instance_version=running,
                recorded_version=recorded.release_id if recorded else None,
                known_releases=repo.release_ids(),
                delta_change_ids=[c.id for c in delta],
            )
        except DeliveryRefused as exc:
            if target_row is not None:
                repo.upsert_delivery(
                    oem.id, target, status=DeliveryStatus.FAILED, run_id=run_id, detail=str(exc), finished_at=now
                )
            if isinstance(exc, UnknownInstanceVersion):
                self.outbox.alert_vendor(
                    f"OEM {oem.id}: instance flagged", [str(exc)], key=f"flagged:{oem.id}:{running}"
                )
            raise DeliveryFailed(str(exc)) from None
        if dry_run:
            raise DeliveryEnded(f"dry run, nothing recorded or installed: would install {target} over {running}")
        if checked.notes:
            self.log(f"note: {' '.join(checked.notes)}")
            repo.set_installed_version(oem.id, running)  # the instance is the truth, and a known release
        if checked.noop:
            if getattr(repo.delivery(oem.id, target), "status", None) == DeliveryStatus.INSTALLED:
                raise DeliveryEnded(f"OEM {oem.id!r} already runs {target}, installed by an earlier delivery")
            repo.upsert_delivery(
                oem.id,
                target,
                status=DeliveryStatus.NOOP,
                run_id=run_id,
                cycle_key=cycle.key,
                from_release_id=running,
                started_at=now,
                finished_at=now,
                detail=f"already on {target}: nothing newer has reached production and been planned",
            )
            raise DeliveryEnded(f"OEM {oem.id!r} already runs {target}: nothing to do (recorded)")
        asked = repo.requested_release_ids(oem.id, after=running, until=target)
        unasked = {c.release_id for c in delta} - asked
        for release_id in sorted(filter(None, {carrier(r, production) for r in unasked})):
            if repo.request_approvals(release_id, [oem.id]):  # with what it carries (L2)
                self.outbox.ask_signoff(oem, release_id)
        settle_at = wave_opening(train, oem, install_day).in_timezone("UTC")
        deadline = train.next_cycle(cycle).release.at.in_timezone("UTC") if oem.install_when_approved else settle_at
        if approval_deadline:
            deadline = pendulum.parse(approval_deadline).in_timezone("UTC")
            settle_at = min(settle_at, deadline)
        plan = {
            "oem_id": oem.id,
            "run_id": run_id,
            "cycle_key": cycle.key,
            "installed": running,
            "aim": target,
            "target": target,
            "changes": list(checked.change_ids),
            "install_at": install_day.in_timezone("UTC").isoformat(),
            "settle_at": settle_at.isoformat(),
            "deadline": deadline.isoformat(),
            "attempt": self._attempt(target, run_id),
            "notes": list(checked.notes),
            "wave": oem.wave,
        }
        self._record(
            plan,
            DeliveryStatus.WAITING,
            started_at=now,
            detail=f"aims at {target} as things stand; sign-off due by {signoff_deadline(oem, cycle).shown()} "
            f"(taken until install day's window opens, {local_time(settle_at, oem.timezone)})",
        )
        return plan

    def _end_when_nothing_can_come(
        self, cycle: DeliveryCycle, running: str, production: set[str], manual: bool
    ) -> None:
        """Nothing newer than the instance is in production. A manual run ends here. A
        scheduled one waits for install day (which records the outcome), unless its
        cycle's release was never cut and no other release of it can still come."""
        newest = f"newest in production: {max(production)}" if production else "no release in production"
        if manual:
            raise DeliveryEnded(
                f"OEM {self.oem.id!r}: manual run with no target_release: nothing newer than the installed "
                f"{running} has reached production ({newest}); nothing to deliver"
            )
        statuses = {row.id: str(row.status) for row in self.repo.releases()}
        try:
            after = self.train.release_by_id(running)
        except UnknownRelease:  # plan_delivery flags such an instance on install day
            after = self.train.previous(cycle.window.releases[0])
        coming = unsettled([r.id for r in self.train.releases_between(after, cycle.release)], statuses)
        if not coming and never_cut(cycle.release.id, statuses):
            raise DeliveryEnded(
                f"OEM {self.oem.id!r}: the cycle's release {cycle.release.id} was never cut (the train moved on "
                f"to {max(statuses)}) and nothing newer than the installed {running} is in production or still "
                f"can be ({newest}); nothing to deliver"
            )
        self.log(f"nothing newer than {running} in production yet; install day decides ({', '.join(coming)} may come)")

    def withdraw(self, earlier: dict, now_aiming: dict) -> None:
        """On install day the run aims higher than at its start: the earlier aim's
        waiting row was only a forecast, not an outcome."""
        if earlier["target"] is not None and earlier["target"] != now_aiming["target"]:
            self.repo.withdraw_waiting_delivery(earlier["oem_id"], earlier["target"], run_id=earlier["run_id"])

    # -- 2. settle the target when the gate ends -----------------------------------------------
    def settle(self, plan: dict) -> dict:
        """Install day: the target is the newest release approved in full. A release
        not approved in full is recorded and told, and an earlier one fully approved is
        installed instead."""
        signoff = self.assess(plan["installed"], plan["aim"])
        if signoff.complete:
            return plan
        target, reasons = signoff.target, signoff.reasons()
        status = DeliveryStatus.REJECTED if signoff.rejected else DeliveryStatus.SKIPPED
        why = "rejected" if signoff.rejected else "not approved by install day"
        instead = f"; installing {target} instead" if target else "; rolls over to the next cycle"
        stays = (
            f"Your instance gets {target} instead, the newest release you approved in full."
            if target
            else f"Your instance stays on {plan['installed']}; the changes come with a later delivery."
        )
        self._end(
            plan,
            status,
            f"{why}: {'; '.join(reasons)}{instead}",
            subject=f"{self.oem.brand_name} {plan['aim']} will not be installed",
            lines=[*reasons, stays],
            raise_=target is None,
        )
        partial = {
            **plan,
            "target": target,
            "changes": signoff.change_ids(target),
            "attempt": self._attempt(target, plan["run_id"]),
            "notes": [*plan["notes"], f"{plan['aim']} {why} ({'; '.join(reasons)}), so {target} is installed"],
        }
        self._record(partial, DeliveryStatus.WAITING, started_at=self.clock(), detail=f"instead of {plan['aim']}")
        return partial

    def gate_outage(self, plan: dict, reason: str) -> None:
        """The release database stayed unreachable while the gate waited: nothing was
        attempted; the vendor is told, the OEM is not (nothing failed on its side)."""
        detail = f"not attempted: {reason}"
        try:
            self._record(plan, DeliveryStatus.NOT_ATTEMPTED, finished_at=self.clock(), detail=detail)
        finally:
            self.outbox.alert_vendor(
                f"OEM {self.oem.id}: delivery of {plan['target']} not attempted",
                [detail],
                key=self._key("not_attempted", plan),
            )
        raise DeliveryEnded(detail)

    # -- 3. install, after a last look -----------------------------------------------------------
    def install(self, plan: dict) -> str:
        """Right before the SSH command: no freeze, inside the window, the instance's
        lock held, and the sign-off read once more; from ``installing`` on the OEM's
        sign-off of the release is closed. The last look and ``installing`` are one
        transaction under the lock every decision takes (``repo.start_install``)."""
        oem, now = self.oem, self.clock()
        if freeze := self.train.freeze_at(now):
            self._end(
                plan,
                DeliveryStatus.SKIPPED,
                f"postponed: {freeze.name} ({freeze.start} to {freeze.end}), nothing is deployed; "
                "rolls over to the next cycle",
                subject=f"{oem.brand_name} {plan['target']} postponed: {freeze.name}",
                lines=[
                    f"No upgrades run during the {freeze.name} ({freeze.start} to {freeze.end}).",
                    f"Your instance stays on {plan['installed']}; the upgrade comes with the next delivery.",
                ],
            )
        if not oem.in_maintenance_window(now):
            self._end(
                plan,
                DeliveryStatus.SKIPPED,
                f"postponed: the maintenance window closed before the install could start ({now.isoformat()}); "
                "rolls over to the next cycle",
                subject=f"{oem.brand_name} {plan['target']} postponed",
                lines=[
                    "The upgrade could not start inside your maintenance window.",
                    f"Your instance stays on {plan['installed']}; the upgrade comes with the next delivery.",
                ],
            )
        self.postpone_if_halted(plan)
        holder = f"{plan['run_id']}#{plan['attempt']}"
        if other := self.repo.acquire_instance_lock(
            oem.id, holder, ttl=dt.timedelta(seconds=self.install_timeout + 300)
        ):
            raise InstanceBusy(f"OEM {oem.id!r}: the instance is locked by {other}; retrying")
        try:
            # one transaction with every decision of the OEM serialised against it: a
            # decision that commits first counts here, one after is refused (installing)
            last_look, halted = self.repo.start_install(
                oem.id,
                plan["target"],
                last_look=lambda: (self.assess(plan["installed"], plan["target"]), self.halted_for(plan)),
                proceed=lambda look: look[0].complete and look[1] is None,
                **self._fields(plan, detail=f"installing {plan['target']}"),
            )
            if not last_look.complete:
                status = DeliveryStatus.REJECTED if last_look.rejected else DeliveryStatus.SKIPPED
                reasons = last_look.reasons()
                self._end(
                    plan,
                    status,
                    f"stopped before the install: {'; '.join(reasons)}",
                    subject=f"{oem.brand_name} {plan['target']} will not be installed",
                    lines=[*reasons, f"Your instance stays on {plan['installed']}."],
                )
            if halted is not None:  # halted since the look above: not installing
                self._postpone(plan, halted)

            def run_install(_key: str) -> dict:
                if self.instance.version(oem) == plan["target"]:
                    return {"excerpt": f"{plan['target']} was already installed; not installing again"}
                result = self.instance.run(
                    oem, oem.commands.render("install", plan["target"]), timeout=self.install_timeout
                )
                if result.exit_status != 0:
                    self._record(plan, DeliveryStatus.INSTALLING, detail=f"install failed:\n{result.excerpt()}")
                    raise DeliveryFailed(f"OEM {oem.id!r}: install of {plan['target']} failed:\n{result.excerpt()}")
                return {"excerpt": result.excerpt()}

            performed, result = perform_once(self.repo, self.install_key(plan), "install", run_install)
        finally:
            self.repo.release_instance_lock(oem.id, holder)
        return result["excerpt"] if performed else f"installed by an earlier attempt: {result['excerpt']}"

    def install_key(self, plan: dict) -> str:
        return f"install:{plan['oem_id']}:{plan['target']}:{plan['attempt']}"

    # -- 4. verify, or roll back -------------------------------------------------------------------
    def verify(self, plan: dict, install_log: str) -> None:
        """Version and health, polled for a grace period: a platform warming up after
        an upgrade is not a failed upgrade."""
        oem = self.oem
        give_up = self.clock() + self.verify_grace
        while True:
            try:
                running = self.instance.version(oem)
                healthy, said = self.instance.health(oem)
            except Exception as exc:  # the instance restarting: keep polling
                running, healthy, said = None, False, f"unreachable: {exc}"
            if running == plan["target"] and healthy:
                break
            if self.clock() >= give_up:
                problem = f"verification failed: instance runs {running!r}, health {said}"
                self._record(plan, DeliveryStatus.INSTALLING, detail=problem, log_excerpt=install_log)
                raise DeliveryFailed(f"OEM {oem.id!r}: {problem}")
            self.sleep(self.verify_poll_seconds)
        self.repo.set_installed_version(oem.id, plan["target"], at=self.clock())
        self._record(
            plan,
            DeliveryStatus.INSTALLED,
            finished_at=self.clock(),
            log_excerpt=install_log,
            detail=f"{len(plan['changes'])} change(s) delivered" + "".join(f"; {n}" for n in plan["notes"]),
        )

    def recover(self, plan: dict) -> None:
        """After a failed install or verification: put the instance back on the version
        it ran, record it, alert the vendor first, then tell the OEM; a send that fails
        does not stop the other (a retry sends only what is missing)."""
        oem, repo = self.oem, self.repo
        row = repo.delivery(oem.id, plan["target"])
        reason = ((row.detail if row else None) or "a delivery step failed").strip()
        if row is not None and row.status in (DeliveryStatus.ROLLED_BACK, DeliveryStatus.FAILED):
            status, outcome = DeliveryStatus(row.status), reason  # a retry of recover: already decided
        elif repo.side_effect(self.install_key(plan)) is None:
            status, outcome = DeliveryStatus.FAILED, f"nothing was installed ({reason})"
        else:
            status, outcome = self._roll_back(plan, reason)
        repo.upsert_delivery(oem.id, plan["target"], status=status, finished_at=self.clock(), detail=outcome)
        if status == DeliveryStatus.ROLLED_BACK:
            repo.set_installed_version(oem.id, plan["installed"], at=self.clock())
        halted = self._halt_later_waves(plan, outcome)
        errors = []
        for send in (
            lambda: self.outbox.alert_vendor(
                f"OEM {oem.id}: delivery of {plan['target']} {status}", [outcome], key=self._key("failed_vendor", plan)
            ),
            lambda: self.outbox.tell_oem(
                oem,
                f"{oem.brand_name} {plan['target']} was not installed",
                [
                    f"The upgrade did not complete and your instance stays on {plan['installed']}.",
                    "Our release team has been alerted and will contact you.",
                ],
                key=self._key("failed", plan),
                release_id=plan["target"],
            ),
            # the halt this failure started for the later waves (docs/waves.md)
            *([lambda: self._alert_halt(halted)] if halted else []),
        ):
            try:
                send()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            raise ConnectionError(f"OEM {oem.id!r}: {outcome}; not every message went out: {'; '.join(errors)}")
        raise DeliveryFailed(f"OEM {oem.id!r}: {outcome}")

    def _halt_later_waves(self, plan: dict, outcome: str) -> Halt | None:
        """A release that ran on this instance and was rolled back or failed verification
        is halted for the later waves (docs/waves.md); the halt to tell the vendor about
        (once: when this instance started it), else None. Nothing installed: no halt, the
        release never ran here."""
        if self.repo.side_effect(self.install_key(plan)) is None:
            return None
        oem, target = self.oem, plan["target"]
        started_by = f"attempt {plan['attempt']}: "
        halt(
            self.repo,
            target,
            cause=halt_cause_of_failure(outcome),
            detail=started_by + outcome.splitlines()[0],
            actor=f"delivery:{oem.id}",
            at=self.clock(),
            wave=oem.wave,
            oem_id=oem.id,
        )
        standing = halt_of(self.repo, target)
        # this attempt started it (a retry of recover tells what is missing); a later attempt
        # failing the same release under a standing halt tells nothing new (the simulated year)
        mine = standing is not None and standing.oem_id == oem.id and standing.detail.startswith(started_by)
        return standing if mine else None

    def _alert_halt(self, halted: Halt) -> None:
        subject, lines, key = vendor_alert(halted)
        self.outbox.alert_vendor(subject, lines, key=key)

    # -- waves: a halted release waits ---------------------------------------------------------------
    def halted_for(self, plan: dict) -> Halt | None:
        """The halt holding this OEM's wave back from ``plan``'s install, if any."""
        if plan.get("target") is None:
            return None
        return blocking(halts(self.repo), installed=plan["installed"], target=plan["target"], wave=self.oem.wave)

    def postpone_if_halted(self, plan: dict) -> None:
        """Raise :class:`DeliveryHalted` (recorded, the OEM told once) when the target is
        halted for the OEM's wave; the caller waits and asks again."""
        if (halted := self.halted_for(plan)) is not None:
            self._postpone(plan, halted)

    def _postpone(self, plan: dict, halted: Halt) -> None:
        oem, now = self.oem, self.clock()
        # the cycle the run delivers (its key names its releases; the wave's day may lie later)
        cycle = self.train.delivery_cycle_by_release_id(plan["cycle_key"].rsplit("-", 1)[-1])
        cycle_ends = self.train.next_cycle(cycle).release.at
        if now >= cycle_ends:
            self._end(
                plan,
                DeliveryStatus.SKIPPED,
                f"postponed until the cycle ended: {halted.release_id} halted {POSTPONED_REASON}; "
                "rolls over to the next cycle",
                subject=f"{oem.brand_name} {plan['target']} postponed",
                lines=[
                    f"The upgrade to {plan['target']} stays postponed while a problem is investigated.",
                    f"Your instance stays on {plan['installed']}; the upgrade comes with a later delivery.",
                ],
            )
        # the OEM reads this line on its portal: no cause and no other OEM (staff see the
        # halt itself in `release-train wave status` and `explain`)
        detail = (
            f"postponed (wave {oem.wave}): {halted.release_id} halted {POSTPONED_REASON}; "
            "installs in the next maintenance window after it is cleared"
        )
        row = self.repo.delivery(oem.id, plan["target"])
        if row is None or (row.status, row.detail) != (DeliveryStatus.WAITING, detail):
            # told once, not at every look of the waiting task (the simulated year counts sends)
            subject, lines = postponed_message(oem, target=plan["target"], installed=plan["installed"], at=now)
            self.outbox.tell_oem(
                oem,
                subject,
                lines,
                key=postponed_key(oem.id, plan["target"], halted, plan["cycle_key"]),
                release_id=plan["target"],
            )
            self._record(plan, DeliveryStatus.WAITING, detail=detail)
        raise DeliveryHalted(f"OEM {oem.id!r}: {plan['target']} postponed: {halted.describe()}", halted)

    def _roll_back(self, plan: dict, reason: str) -> tuple[DeliveryStatus, str]:
        oem = self.oem
        holder = f"{plan['run_id']}#{plan['attempt']}:rollback"
        if other := self.repo.acquire_instance_lock(oem.id, holder, ttl=dt.timedelta(seconds=self.install_timeout)):
            raise InstanceBusy(f"OEM {oem.id!r}: the instance is locked by {other}; retrying the rollback")
        try:
            result = self.instance.run(
                oem, oem.commands.render("rollback", plan["installed"]), timeout=self.install_timeout
            )
            back = self.instance.version(oem) == plan["installed"] and self.instance.health(oem)[0]
        except Exception as exc:
            result, back = None, False
            reason = f"{reason}; rollback could not run: {exc}"
        finally:
            self.repo.release_instance_lock(oem.id, holder)
        if result is not None:
            reason = f"{reason}\n{result.excerpt()}"
        if back:
            return DeliveryStatus.ROLLED_BACK, f"rolled back to {plan['installed']} after: {reason}"
        return (
            DeliveryStatus.FAILED,
            f"rollback to {plan['installed']} FAILED, the instance needs attention; after: {reason}",
        )

    # -- 5. docs and the good news ---------------------------------------------------------------------
    def publish_docs(self, plan: dict) -> str:
        """The OEM's docs follow its instance: notes for every release since the one it ran."""
        return self.outbox.publish_docs(
            self.oem, installed=plan["installed"], target=plan["target"], asked=self.asked_for(plan)
        )

    def notify_delivered(self, plan: dict) -> None:
        oem = self.oem
        local = self.clock().in_timezone(oem.timezone).format("D MMMM YYYY HH:mm")
        asked = self.asked_for(plan)
        self.outbox.tell_oem_delivered(
            oem,
            f"Your {oem.brand_name} instance now runs {plan['target']}",
            [
                f"Upgraded from {plan['installed']} to {plan['target']} on {local} ({oem.timezone}).",
                f"{len(plan['changes'])} change(s), all signed off by you, are now live.",
                *asked_for_lines(asked),
                *plan["notes"][-1:],
            ],
            key=self._key("installed", plan),
            installed=plan["installed"],
            target=plan["target"],
            asked=asked,
        )

    def asked_for(self, plan: dict) -> dict[str, list[dict]]:
        """The delivered changes that bring roadmap items this OEM asked for (its own asks only)."""
        planned = planned_items(self.roadmap_config or load_roadmap_config(), self.repo.planned_items())
        return asked_for(self.repo, self.oem.id, plan["changes"], planned)

    # -- 6. a rollback the OEM asked for and staff approved (release_pipeline.rollbacks) ------------
    def rollback_window(self) -> pendulum.DateTime:
        """When an approved rollback may run: now when inside the OEM's maintenance
        window and outside a freeze, else the next such moment."""
        at = self.clock()
        for _ in range(100):  # each turn skips one freeze; a calendar frozen this long is a config error
            opening = self.oem.next_maintenance_opening(at)
            free = self.train.first_moment_after_freeze(opening)
            if free == opening:
                return opening.in_timezone("UTC")
            at = free
        raise DeliveryFailed(f"OEM {self.oem.id!r}: no maintenance window outside a freeze in sight")

    def tell_decision(self, request: RollbackRequest) -> None:
        """The OEM hears staff's decision on its request (once: the key names the request)."""
        if request.status == RollbackStatus.REQUESTED:
            return
        decided = RollbackStatus.REFUSED if request.status == RollbackStatus.REFUSED else RollbackStatus.APPROVED
        subject, lines = decision_message(request, self.oem.brand_name)
        self.outbox.tell_oem(
            self.oem,
            subject,
            lines,
            key=f"rollback:{decided}:{self.oem.id}:{request.id}",
            release_id=request.from_release_id,
        )

    def roll_back_on_request(self, request_id: int, *, run_id: str) -> str:
        """Run an approved rollback: freeze and window checked last, the OEM's rollback
        command under the instance's lock with the health check (``_roll_back``, as after
        a failed delivery), recorded in ``deliveries`` (the delivery of the rolled-back
        release becomes ``rolled_back``) and on the request; the approvals of what the
        instance no longer runs withdrawn; docs, the OEM and the vendor told once each.
        A retry after a crash finds the instance back and records it without running
        the command again."""
        oem, repo, now = self.oem, self.repo, self.clock()
        request = request_of(repo, request_id, oem.id)
        if request.status != RollbackStatus.APPROVED:
            raise DeliveryEnded(f"OEM {oem.id!r}: rollback request #{request_id} is {request.status}: nothing to run")
        if freeze := self.train.freeze_at(now):
            raise DeliveryEnded(f"rollback #{request_id} waits: {freeze.name} ({freeze.start} to {freeze.end})")
        if not oem.in_maintenance_window(now):
            raise DeliveryEnded(f"rollback #{request_id} waits for the maintenance window ({now.isoformat()})")
        row = repo.delivery(oem.id, request.from_release_id)
        plan = {
            "oem_id": oem.id,
            "run_id": run_id,
            "cycle_key": row.cycle_key if row else None,
            "installed": request.to_release_id,
            "target": request.from_release_id,
            "attempt": row.attempt if row else 1,
            "changes": [],
            "notes": [],
        }
        reason = (
            f"rollback requested by the OEM (#{request.id}, {request.requested_by}): {request.reason}; "
            f"approved by {request.decided_by}: {request.decision_reason}"
        )
        if self.instance.version(oem) == request.to_release_id and self.instance.health(oem)[0]:
            status, outcome = DeliveryStatus.ROLLED_BACK, f"rolled back to {request.to_release_id} after: {reason}"
        else:
            status, outcome = self._roll_back(plan, reason)
        done = self.clock()
        if status == DeliveryStatus.ROLLED_BACK:
            repo.upsert_delivery(
                oem.id, request.from_release_id, status=status, run_id=run_id, finished_at=done, detail=outcome
            )
            repo.set_installed_version(oem.id, request.to_release_id, at=done)
            again = withdraw_approvals(repo, request)
            # done only once everything is told: a send that fails leaves the request approved,
            # and the retry finds the instance back and sends what is missing
            self._after_rollback(request, again, done)
            finish(repo, request.id, RollbackStatus.DONE, detail=outcome, at=done)
            return outcome
        repo.upsert_delivery(oem.id, request.from_release_id, status=status, run_id=run_id, detail=outcome)
        self.outbox.alert_vendor(
            f"OEM {oem.id}: requested rollback #{request.id} to {request.to_release_id} FAILED",
            [outcome],
            key=f"rollback:failed_vendor:{oem.id}:{request.id}",
        )
        self.outbox.tell_oem(
            oem,
            f"{oem.brand_name}: the rollback to {request.to_release_id} did not complete",
            [
                f"The rollback you asked for (#{request.id}) did not complete.",
                "Our release team has been alerted and will contact you.",
            ],
            key=f"rollback:failed:{oem.id}:{request.id}",
            release_id=request.from_release_id,
        )
        finish(repo, request.id, RollbackStatus.FAILED, detail=outcome, at=done)
        raise DeliveryFailed(f"OEM {oem.id!r}: {outcome}")

    def _after_rollback(self, request: RollbackRequest, again: list[str], at: pendulum.DateTime) -> None:
        """Docs, then the vendor, then the OEM; each once per request (a retry sends what is missing)."""
        oem = self.oem
        local = at.in_timezone(oem.timezone).format("D MMMM YYYY HH:mm")
        lines = [
            f"Your instance was rolled back from {request.from_release_id} to {request.to_release_id} "
            f"on {local} ({oem.timezone}), as you asked (request #{request.id}).",
            f"The {len(again)} change(s) it no longer runs are pending your sign-off again; "
            "they come back only once you approve them again.",
        ]
        self.outbox.publish_rollback_docs(
            oem, rolled_back=request.from_release_id, back_to=request.to_release_id, request_id=request.id, lines=lines
        )
        self.outbox.alert_vendor(
            f"OEM {oem.id}: rolled back from {request.from_release_id} to {request.to_release_id} "
            f"(request #{request.id})",
            [f"{len(again)} change(s) to be asked again: {', '.join(again) or 'none'}"],
            key=f"rollback:done_vendor:{oem.id}:{request.id}",
        )
        self.outbox.tell_oem(
            oem,
            f"Your {oem.brand_name} instance runs {request.to_release_id} again",
            lines,
            key=f"rollback:done:{oem.id}:{request.id}",
            release_id=request.from_release_id,
        )

    # -- helpers ---------------------------------------------------------------------------------------
    def production(self) -> set[str]:
        return self.repo.release_ids([ReleaseStatus.DEPLOYED])

    def assess(self, installed: str, until: str | None) -> SignoffAssessment:
        return signoff_of(self.repo, self.oem.id, installed, until, self.oem.signoff_policy)

    def _attempt(self, release_id: str, run_id: str) -> int:
        row = self.repo.delivery(self.oem.id, release_id)
        if row is None:
            return 1
        if row.run_id == run_id or row.status not in FINISHED:
            return row.attempt  # the same try, resumed (a retried or cleared task)
        return row.attempt + 1

    def _key(self, what: str, plan: dict) -> str:
        return f"delivery:{what}:{plan['oem_id']}:{plan['target']}:{plan['attempt']}"

    def _fields(self, plan: dict, **fields: Any) -> dict[str, Any]:
        """The delivery row's fields for ``plan``, with ``fields``."""
        fields.setdefault("run_id", plan["run_id"])
        return {
            "cycle_key": plan["cycle_key"],
            "from_release_id": plan["installed"],
            "attempt": plan["attempt"],
            **fields,
        }

    def _record(self, plan: dict, status: DeliveryStatus, **fields: Any) -> None:
        self.repo.upsert_delivery(plan["oem_id"], plan["target"], status=status, **self._fields(plan, **fields))

    def _end(
        self, plan: dict, status: DeliveryStatus, detail: str, *, subject: str, lines: list[str], raise_: bool = True
    ) -> None:
        """Record an outcome that ends this try, tell the vendor, then the OEM, once each."""
        self._record(plan, status, finished_at=self.clock(), detail=detail)
        self.outbox.alert_vendor(f"OEM {self.oem.id}: {subject}", [detail], key=self._key(f"{status}_vendor", plan))
        self.outbox.tell_oem(self.oem, subject, lines, key=self._key(str(status), plan), release_id=plan["target"])
        if raise_:
            raise DeliveryEnded(detail)
