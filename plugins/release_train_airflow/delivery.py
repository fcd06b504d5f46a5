"""The tasks of an oem_delivery__<oem> run. The domain
(``release_pipeline.delivery_process``) decides and acts through two ports; this
module gives it the Airflow ones (SSH and HTTP hooks, the release database of the
``release_db`` connection) and turns its outcomes into task states: an outcome that
ends the run is a skip, a failure fails the task (and ``recover`` runs).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

import pendulum
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from release_pipeline.delivery_process import DeliveryEnded, DeliveryFailed, DeliveryHalted, DeliveryProcess
from release_pipeline.ledger import net
from release_pipeline.notes import Audience, release_sections, render, render_release_notes
from release_pipeline.registry import Oem
from release_pipeline.vendor import load_vendor
from release_train_airflow import instance, outbound
from release_train_airflow.checks import find_missing, oem_connections
from release_train_airflow.operators import ApprovalGateOperator, UpstreamResults, takes_upstream_results
from release_train_airflow.outbound import alert_vendor
from release_train_airflow.resources import calendar, registry, repository
from release_train_airflow.triggers import MomentTrigger

log = logging.getLogger(__name__)

# how often a wait for a moment (install day, the maintenance window) reads the clock
CLOCK_POLL_SECONDS = 60
# how often a delivery postponed by a wave halt looks whether staff resumed the release
HALT_POLL_SECONDS = 300


def describe(oem: Oem, intro: str) -> str:
    """The DAG's page in the UI: what it does, then this OEM's settings."""
    window = oem.maintenance_window
    rows = [
        ("OEM", f"{oem.display_name} (`{oem.id}`)"),
        ("Brand", oem.brand_name),
        ("Tier", oem.tier),
        ("Timezone", oem.timezone),
        ("Maintenance window", f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M}"),
        ("Rollout wave", f"{oem.wave} (docs/waves.md)"),
        ("Sign-off due", "any window of the cycle" if oem.install_when_approved else "when install day's window opens"),
        ("Sign-off policy", f"{oem.signoff_policy.describe()} per change"),
        (
            "Docs strategy",
            {"ava": "ava: we publish its portal", "oem": "oem: it publishes, we send the package"}[oem.docs_strategy],
        ),
        ("Connections", ", ".join(f"`{c}`" for c in oem.connections.model_dump().values())),
        ("Install command", f"`{oem.commands.install}`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"{intro}\n\n#### {oem.brand_name}\n\n| setting | value |\n|---|---|\n{table}\n"


class AirflowOutbox:
    """Messages through the OEM's and the vendor's notify connections, docs through
    the OEM's docs strategy; each send once per key (the release DB's ledger)."""

    def tell_oem(self, oem: Oem, subject: str, lines: list[str], *, key: str, release_id: str) -> None:
        self._send(oem, subject, lines, key=key, release_id=release_id)

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
        notes = notes_since(oem, installed, target, asked)
        self._send(oem, subject, lines, key=key, release_id=target, notes=notes)

    def alert_vendor(self, subject: str, lines: list[str], *, key: str) -> None:
        alert_vendor(subject, lines, key=key)

    def ask_signoff(self, oem: Oem, release_id: str) -> None:
        from release_train_airflow.production_release import notify_oem_of_release

        notify_oem_of_release(release_id, oem.id)

    def publish_docs(self, oem: Oem, *, installed: str, target: str, asked: dict[str, list[dict]] | None = None) -> str:
        return outbound.apply_docs_strategy(
            repository(),
            oem,
            notes_since(oem, installed, target, asked),
            kind="delivery_notes",
            scope_key=target,
            page_key=f"releases/{target}",
        )

    def publish_rollback_docs(
        self, oem: Oem, *, rolled_back: str, back_to: str, request_id: int, lines: list[str]
    ) -> str:
        """The page of ``rolled_back`` says the instance runs ``back_to`` again (``lines``),
        above the notes of what it no longer runs; once per rollback request."""
        notes = notes_since(oem, back_to, rolled_back)
        page = render(
            "delivery_update",
            Audience.oem(oem, load_vendor()),
            subject=f"{oem.brand_name} {rolled_back}: rolled back, your instance runs {back_to}",
            lines=[*lines, f"The changes below came with {rolled_back} and are no longer live on your instance."],
            notes_markdown=notes.markdown,
            notes_html=notes.html,
        )
        return outbound.apply_docs_strategy(
            repository(),
            oem,
            page,
            kind="rollback_notes",
            scope_key=f"{rolled_back}-rollback-{request_id}",
            page_key=f"releases/{rolled_back}",
        )

    def _send(self, oem: Oem, subject: str, lines: list[str], *, key: str, release_id: str, notes=None) -> None:
        message = render(
            "delivery_update",
            Audience.oem(oem, load_vendor()),
            subject=subject,
            lines=lines,
            notes_markdown=notes.markdown if notes else "",
            notes_html=notes.html if notes else "",
        )
        outbound.send_message(
            repository(),
            oem.connections.notify,
            message.as_message(kind="delivery_update", release_id=release_id),
            key=key,
        )


def notes_since(oem: Oem, installed: str, target: str, asked: dict[str, list[dict]] | None = None):
    """The OEM's notes for every production release after ``installed`` up to ``target``,
    with every change the instance newly runs (those carried from releases that never
    reached production listed as carried: the ledger); ``asked`` marks the changes that
    bring what this OEM asked for."""
    repo, train = repository(), calendar()
    production = set(repo.production_release_ids(installed, target))
    changes = net(repo.changes_between(installed, target))
    releases = sorted(production) or [target]
    return render_release_notes(release_sections(train, releases, changes), Audience.oem(oem, load_vendor()), asked)


def process(oem_id: str) -> DeliveryProcess:
    return DeliveryProcess(
        repo=repository(),
        train=calendar(),
        oem=registry().get(oem_id),
        instance=instance.SshInstance(),
        outbox=AirflowOutbox(),
        log=log.info,
    )


def _as_task_outcome(step: Callable) -> Callable:
    """The domain's outcomes as task states."""

    @functools.wraps(step)
    def run(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except DeliveryEnded as ended:
            raise AirflowSkipException(str(ended)) from None
        except DeliveryFailed as failed:
            raise AirflowFailException(str(failed)) from None

    return run


# -- the steps -------------------------------------------------------------------------------------
@_as_task_outcome
def plan(oem_id: str, params: dict, run_id: str, *, preview: bool) -> dict:
    """Everything is checked here, before anything touches the instance."""
    # here, not at the top: run_targets brings TaskFlow's machinery, which the fleet's
    # DAG file, parsed as a whole every few minutes, does not use
    from release_train_airflow.run_targets import is_manual_run

    oem = registry().get(oem_id)
    if missing := find_missing(oem_connections(oem)):
        raise AirflowFailException(f"OEM {oem_id!r}: missing Airflow connections: {'; '.join(missing)}")
    return process(oem_id).plan(
        run_id=run_id,
        target_override=params.get("target_release"),
        approval_deadline=params.get("approval_deadline"),
        preview=preview,
        dry_run=bool(params.get("dry_run")),
        manual=is_manual_run(),
    )


# -- the tasks, as the DAG wires them (it sets pools and retries) ------------------------------------
class DeliveryStep(UpstreamResults, BaseOperator):
    """A step of an OEM delivery as a task: calls ``step`` (a function of this module)
    with ``args`` and the task's context, the step's outcome as the task's state.

    A plain operator and not a TaskFlow ``@task``: the fleet's DAG file builds one per
    step per OEM, and a TaskFlow task costs about twice an operator to build and to
    serialize (its callable's signature is inspected again at every layer of its
    init; bench/dag_parse.py). At run time the task is the one the worker parsed, so
    ``step`` need not be serialized. ``args`` may hold upstream results
    (:func:`takes_upstream_results`).

    A step may wait without holding a worker slot: it raises ``TaskDeferred`` with
    ``method_name="execute"``, and runs again when its trigger fires.

    Built with :meth:`of`, not by calling the class: an ``__init__`` of its own would
    be one more layer of Airflow's argument merging for every step of every OEM.
    """

    upstream_fields = ("args",)
    step: Callable[..., Any] | None = None
    args: list[Any] | tuple[()] = ()

    @classmethod
    def of(cls, step: Callable[..., Any], *args: Any, **task_kwargs: Any) -> DeliveryStep:
        """The task calling ``step(*args, context=...)``; ``task_kwargs`` as for any
        operator (``task_id`` defaults to the step's name)."""
        task = cls(task_id=task_kwargs.pop("task_id", step.__name__), **task_kwargs)
        task.step = step
        task.args = takes_upstream_results(task, list(args))
        return task

    def execute(self, context, event: dict | None = None):
        if self.step is None:
            raise AirflowFailException(f"{self.task_id}: no step (build a DeliveryStep with DeliveryStep.of)")
        return _as_task_outcome(self.step)(*self.args, context=context)


def wait_for_install_date(started: dict, *, context) -> None:
    """Deferred until install day, so no worker slot is held for weeks; the clock is
    read every minute (``MomentTrigger``: a moved clock is seen)."""
    install_at = started["install_at"]
    if pendulum.now("UTC") < pendulum.parse(install_at):
        raise TaskDeferred(
            trigger=MomentTrigger(moment=install_at, poll_interval=CLOCK_POLL_SECONDS), method_name="execute"
        )


def plan_delivery(oem_id: str, *, context) -> dict:
    """What the run aims at as things stand (the task log says which, and why)."""
    return plan(oem_id, context["params"], context["run_id"], preview=True)


def aim_on_install_day(oem_id: str, started: dict, *, context) -> dict:
    """Install day: the cycle's release may have reached production since the start."""
    now_aiming = plan.__wrapped__(oem_id, context["params"], context["run_id"], preview=False)
    process(oem_id).withdraw(started, now_aiming)
    return now_aiming


class InstallWhenSignedOffOperator(ApprovalGateOperator):
    """The approval gate, settling the target, the maintenance window, the preflight
    and the install, as one task.

    One task and not five: a sign-off wakes the gate (the triggerer's shared poller,
    at once on PostgreSQL's NOTIFY) and the install starts in the same resume of this
    task, not after the scheduler has run four more tasks (bench/signoff_latency.py).
    Both waits are deferred, so the ``oem_installs`` pool slot is held only while the
    task runs. Every try starts at the gate: the sign-off, the window and the
    instance's health are looked at again before a retried install.

    Pushes the settled plan as XCom ``plan`` (verify, recover and the docs read it)
    and returns the install's log.
    """

    window_poll_seconds = CLOCK_POLL_SECONDS  # a class attribute, not an argument: one init layer fewer per OEM
    halt_poll_seconds = HALT_POLL_SECONDS

    def execute(self, context):
        return self.after_gate(context, super().execute(context))

    def execute_complete(self, context, event: dict):
        return self.after_gate(context, super().execute_complete(context, event))

    def after_gate(self, context, gate: dict) -> str:
        settled = settle(self.plan, gate)
        context["ti"].xcom_push(key="plan", value=settled)
        return self.in_window(context, plan=settled)

    def in_window(self, context, event: dict | None = None, *, plan: dict) -> str:
        """Preflight and install once the OEM's maintenance window is open."""
        now = pendulum.now("UTC")
        opening = registry().get(plan["oem_id"]).next_maintenance_opening(now)
        if opening > now:
            self.log.info("settled on %s; waiting for the maintenance window at %s", plan["target"], opening)
            trigger = MomentTrigger(
                moment=opening.in_timezone("UTC").isoformat(), poll_interval=self.window_poll_seconds
            )
            self.defer(trigger=trigger, method_name="in_window", kwargs={"plan": plan})
        try:
            postpone_if_halted(plan)  # before the preflight: a halt may last days
            preflight(plan)
            return install(plan)
        except DeliveryHalted as halted:
            # waits deferred (no worker, no pool slot) and looks again; once staff resume
            # the release, the wait for the next window opening above starts the install
            self.log.info("%s; looking again in %s s", halted, self.halt_poll_seconds)
            again = now.add(seconds=self.halt_poll_seconds).in_timezone("UTC").isoformat()
            trigger = MomentTrigger(moment=again, poll_interval=self.window_poll_seconds)
            self.defer(trigger=trigger, method_name="in_window", kwargs={"plan": plan})


@_as_task_outcome
def settle(plan: dict, gate: dict) -> dict:
    if gate.get("outcome") == "outage":
        process(plan["oem_id"]).gate_outage(plan, gate["summary"])
    return process(plan["oem_id"]).settle(plan)


@_as_task_outcome
def postpone_if_halted(plan: dict) -> None:
    process(plan["oem_id"]).postpone_if_halted(plan)


def preflight(plan: dict) -> None:
    """The instance answers healthy before we touch it (else retried, then recovered)."""
    oem = registry().get(plan["oem_id"])
    healthy, said = instance.SshInstance().health(oem)
    if not healthy:
        repository().upsert_delivery(
            oem.id, plan["target"], status="waiting", detail=f"instance unhealthy before the install: {said}"
        )
        raise instance.TransientInstanceError(f"OEM {oem.id!r}: instance unhealthy before the install: {said}")


@_as_task_outcome
def install(plan: dict) -> str:
    return process(plan["oem_id"]).install(plan)


def verify(plan: dict, install_log: str, *, context) -> None:
    steps = process(plan["oem_id"])
    grace_seconds = context["params"].get("verify_grace_seconds")
    if grace_seconds is not None:
        steps.verify_grace = dt.timedelta(seconds=float(grace_seconds))
        steps.verify_poll_seconds = min(steps.verify_poll_seconds, max(float(grace_seconds) / 5, 0.2))
    steps.verify(plan, install_log)


def recover(plan: dict, *, context) -> None:
    process(plan["oem_id"]).recover(plan)


def publish_docs(plan: dict, *, context) -> str:
    return process(plan["oem_id"]).publish_docs(plan)


def notify_delivered(plan: dict, *, context) -> None:
    process(plan["oem_id"]).notify_delivered(plan)
