"""What an oem_delivery__<oem> run does, step by step. The DAG file wires these; the
domain (release_pipeline.delivery) decides, this module talks to Airflow, the
release database, the instance and the OEM.

The delivery row of (OEM, target release) tells the story of each run: waiting,
installing, then installed / noop / rejected / skipped / rolled_back / failed, with
the reason in ``detail``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from release_pipeline.delivery import DeliveryRefused, plan_delivery
from release_pipeline.idempotency import perform_once
from release_pipeline.models import DeliveryStatus, ReleaseStatus
from release_pipeline.notes import Audience, ReleaseNotesInput, render, render_release_notes
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import UnknownRelease
from release_pipeline.vendor import load_vendor
from release_train_airflow import instance, outbound
from release_train_airflow.checks import find_missing, oem_connections
from release_train_airflow.outbound import alert_vendor
from release_train_airflow.resources import calendar, registry, repository


def describe(oem: Oem, intro: str) -> str:
    """The DAG's page in the UI: what it does, then this OEM's settings."""
    window = oem.maintenance_window
    rows = [
        ("OEM", f"{oem.display_name} (`{oem.id}`)"),
        ("Brand", oem.brand_name),
        ("Tier", oem.tier),
        ("Timezone", oem.timezone),
        ("Maintenance window", f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M}"),
        (
            "Docs strategy",
            {"ava": "ava: we publish its portal", "oem": "oem: it publishes, we send the package"}[oem.docs_strategy],
        ),
        ("Connections", ", ".join(f"`{c}`" for c in oem.connections.model_dump().values())),
        ("Install command", f"`{oem.commands.install}`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"{intro}\n\n#### {oem.brand_name}\n\n| setting | value |\n|---|---|\n{table}\n"


def _now() -> pendulum.DateTime:
    return pendulum.now("UTC")


def _record(plan: dict, status: DeliveryStatus, **fields: Any) -> None:
    repository().upsert_delivery(plan["oem_id"], plan["target"], status=status, **fields)


def _tell_oem(oem: Oem, plan: dict, subject: str, lines: list[str], *, key: str, with_notes: bool = False) -> None:
    """A delivery update for the OEM, white-labelled, sent once per key."""
    audience = Audience.oem(oem, load_vendor())
    notes = _delta_notes(plan, audience) if with_notes else None
    message = render(
        "delivery_update",
        audience,
        subject=subject,
        lines=lines,
        notes_markdown=notes.markdown if notes else "",
        notes_html=notes.html if notes else "",
    )
    outbound.send_message(
        repository(),
        oem.connections.notify,
        message.as_message(kind="delivery_update", release_id=plan["target"]),
        key=f"delivery:{key}:{oem.id}:{plan['target']}",
    )


def _delta_notes(plan: dict, audience: Audience):
    repo, train = repository(), calendar()
    changes = repo.changes_between(plan["installed"], plan["target"])
    releases = sorted({c.release_id for c in changes})
    return render_release_notes(
        [ReleaseNotesInput(r, train.release_by_id(r).at, [c for c in changes if c.release_id == r]) for r in releases]
        or [ReleaseNotesInput(plan["target"], train.release_by_id(plan["target"]).at, [])],
        audience,
    )


# -- 1. target and delta ---------------------------------------------------------------------
def default_target(data_interval_end: dt.datetime) -> str | None:
    """The cycle's release, or the newest release before it that reached production."""
    train = calendar()
    cycle_release = train.delivery_cycle_of(train.release_at(data_interval_end)).release
    row = repository().latest_release([ReleaseStatus.DEPLOYED], before=train.release(cycle_release.index + 1).id)
    return row.id if row else None


def plan(oem_id: str, data_interval_end: dt.datetime, params: dict, run_id: str) -> dict:
    """Everything is checked here, before anything touches the instance."""
    oem = registry().get(oem_id)
    if missing := find_missing(oem_connections(oem)):
        raise AirflowFailException(f"OEM {oem_id!r}: missing Airflow connections: {'; '.join(missing)}")
    repo, train = repository(), calendar()
    target = params.get("target_release") or default_target(data_interval_end)
    if target is None:
        raise AirflowSkipException(f"OEM {oem_id!r}: no release has reached production yet; nothing to deliver")
    try:
        target_release = train.release_by_id(target)
    except UnknownRelease as exc:
        raise AirflowFailException(f"OEM {oem_id!r}: param target_release: {exc}") from None
    target_row = repo.release(target)
    recorded = repo.installed_version(oem_id)
    recorded_version = recorded.release_id if recorded else None
    deployed = {r.id for r in repo.releases([ReleaseStatus.DEPLOYED])}
    running = instance.version(oem)
    try:
        delivery = plan_delivery(
            oem_id=oem_id,
            target=target,
            target_status=target_row.status if target_row else None,
            instance_version=running,
            recorded_version=recorded_version,
            known_releases={r.id for r in repo.releases()},
            delta_change_ids=[c.id for c in repo.changes_between(running, target) if c.release_id in deployed]
            if target_row
            else [],
        )
    except DeliveryRefused as exc:
        if target_row is not None:
            repo.upsert_delivery(
                oem_id, target, status=DeliveryStatus.FAILED, run_id=run_id, detail=str(exc), finished_at=_now()
            )
        if "does not know" in str(exc):
            alert_vendor(f"OEM {oem_id}: instance flagged", [str(exc)], key=f"flagged:{oem_id}:{running}")
        raise AirflowFailException(str(exc)) from None
    if delivery.notes:
        print("note:", *delivery.notes)
        repo.set_installed_version(oem_id, running)  # the instance is the truth, and a known release
    cycle = train.delivery_cycle_of(target_release)
    deadline = params.get("approval_deadline") or train.next_cycle(cycle).release.at.in_timezone("UTC").isoformat()
    result = {
        "oem_id": oem_id,
        "target": target,
        "installed": delivery.installed,
        "changes": list(delivery.change_ids),
        "cycle_key": cycle.key,
        "install_at": cycle.install_at.in_timezone("UTC").isoformat(),
        "approval_deadline": deadline,
    }
    if params.get("dry_run"):
        raise AirflowSkipException(f"dry run, nothing recorded or installed: {result}")
    common = {"cycle_key": cycle.key, "from_release_id": delivery.installed, "run_id": run_id}
    if delivery.noop:
        repo.upsert_delivery(
            oem_id,
            target,
            status=DeliveryStatus.NOOP,
            started_at=_now(),
            finished_at=_now(),
            detail=f"already on {target}",
            **common,
        )
        raise AirflowSkipException(f"OEM {oem_id!r} already runs {target}: nothing to do (recorded)")
    existing = repo.delivery(oem_id, target)
    repo.upsert_delivery(
        oem_id,
        target,
        status=DeliveryStatus.WAITING,
        detail=" ".join(delivery.notes) or None,
        started_at=existing.started_at if existing and existing.started_at else _now(),
        **common,
    )
    return result


# -- 3. what the OEM's sign-off means ---------------------------------------------------------
def act_on_sign_off(plan: dict, gate: dict) -> None:
    oem = registry().get(plan["oem_id"])
    if gate["outcome"] == "approved":
        return
    if gate["outcome"] == "rejected":
        reasons = [
            f"{r['change_id']} (release {r['release_id']}) rejected by {r['actor']}: {r['comment']}"
            for r in gate["rejected"]
        ]
        _record(plan, DeliveryStatus.REJECTED, finished_at=_now(), detail="; ".join(reasons))
        _tell_oem(
            oem,
            plan,
            f"{oem.brand_name} {plan['target']} will not be installed",
            [*reasons, f"Your instance stays on {plan['installed']}."],
            key="rejected",
        )
        alert_vendor(
            f"OEM {oem.id} rejected a change of {plan['target']}", reasons, key=f"rejected:{oem.id}:{plan['target']}"
        )
        raise AirflowSkipException(f"rejected, nothing installed: {'; '.join(reasons)}")
    detail = f"{gate['summary']}; the changes roll over to the next delivery cycle"
    _record(plan, DeliveryStatus.SKIPPED, finished_at=_now(), detail=detail)
    _tell_oem(
        oem,
        plan,
        f"{oem.brand_name} {plan['target']} postponed to the next cycle",
        [
            f"We did not receive your sign-off of {', '.join(gate['pending'])} in time.",
            f"Your instance stays on {plan['installed']}; these changes come with the next delivery.",
        ],
        key="deadline",
    )
    raise AirflowSkipException(detail)


# -- 4. pre-flight ------------------------------------------------------------------------------
def next_maintenance_opening(plan: dict) -> str:
    oem = registry().get(plan["oem_id"])
    return oem.next_maintenance_opening(_now()).in_timezone("UTC").isoformat()


def preflight(plan: dict) -> None:
    oem = registry().get(plan["oem_id"])
    now = _now()
    if freeze := calendar().freeze_at(now):
        detail = f"{freeze.name} ({freeze.start} to {freeze.end}): nothing is deployed; rolls over to the next cycle"
        _record(plan, DeliveryStatus.SKIPPED, finished_at=now, detail=detail)
        _tell_oem(
            oem,
            plan,
            f"{oem.brand_name} {plan['target']} postponed: {freeze.name}",
            [
                f"No upgrades run during the {freeze.name} ({freeze.start} to {freeze.end}).",
                f"Your instance stays on {plan['installed']}.",
            ],
            key="freeze",
        )
        raise AirflowSkipException(detail)
    if not oem.in_maintenance_window(now):
        raise AirflowFailException(f"OEM {oem.id!r}: {now} is outside the maintenance window")
    healthy, said = instance.health(oem)
    if not healthy:
        _record(plan, DeliveryStatus.WAITING, detail=f"instance unhealthy before the install: {said}")
        raise instance.TransientInstanceError(f"OEM {oem.id!r}: instance unhealthy before the install: {said}")


# -- 5. install -----------------------------------------------------------------------------------
def install_key(plan: dict) -> str:
    return f"install:{plan['oem_id']}:{plan['target']}"


def install(plan: dict) -> str:
    """Runs the OEM's install command once: a retry after an install that happened
    (or an earlier run's) finds the target already running and does not repeat it."""
    oem = registry().get(plan["oem_id"])
    _record(plan, DeliveryStatus.INSTALLING, detail=None)

    def run_install(_key: str) -> dict:
        if instance.version(oem) == plan["target"]:
            return {"excerpt": f"{plan['target']} was already installed; not installing again"}
        result = instance.run(oem, oem.commands.render("install", plan["target"]))
        if result.exit_status != 0:
            _record(plan, DeliveryStatus.INSTALLING, detail=f"install failed:\n{result.excerpt()}")
            raise AirflowFailException(f"OEM {oem.id!r}: install of {plan['target']} failed:\n{result.excerpt()}")
        return {"excerpt": result.excerpt()}

    performed, result = perform_once(repository(), install_key(plan), "install", run_install)
    return result["excerpt"] if performed else f"installed by an earlier attempt: {result['excerpt']}"


# -- 6. verify, or roll back --------------------------------------------------------------------
def verify(plan: dict, install_log: str) -> None:
    oem = registry().get(plan["oem_id"])
    running = instance.version(oem)
    healthy, said = instance.health(oem)
    if running != plan["target"] or not healthy:
        problem = f"verification failed: instance runs {running!r}, health {said}"
        _record(plan, DeliveryStatus.INSTALLING, detail=problem, log_excerpt=install_log)
        raise AirflowFailException(f"OEM {oem.id!r}: {problem}")
    repo = repository()
    repo.set_installed_version(oem.id, plan["target"])
    _record(
        plan,
        DeliveryStatus.INSTALLED,
        finished_at=_now(),
        log_excerpt=install_log,
        detail=f"{len(plan['changes'])} change(s) delivered",
    )


def recover(plan: dict) -> None:
    """After a failed pre-flight, install or verification: put the instance back on the
    version it ran, record what happened, tell the OEM and the vendor, fail the run."""
    oem, repo = registry().get(plan["oem_id"]), repository()
    reason = (repo.delivery(oem.id, plan["target"]).detail or "a delivery step failed").strip()
    if repo.side_effect(install_key(plan)) is None:
        status, outcome = DeliveryStatus.FAILED, f"nothing was installed ({reason})"
    else:
        try:
            result = instance.run(oem, oem.commands.render("rollback", plan["installed"]))
            back = instance.version(oem) == plan["installed"] and instance.health(oem)[0]
        except Exception as exc:
            result, back = None, False
            reason = f"{reason}; rollback could not run: {exc}"
        if back:
            status, outcome = DeliveryStatus.ROLLED_BACK, f"rolled back to {plan['installed']} after: {reason}"
        else:
            status = DeliveryStatus.FAILED
            outcome = f"rollback to {plan['installed']} FAILED, the instance needs attention; after: {reason}"
        if result is not None:
            reason = f"{reason}\n{result.excerpt()}"
    repo.upsert_delivery(oem.id, plan["target"], status=status, finished_at=_now(), detail=outcome)
    if status == DeliveryStatus.ROLLED_BACK:
        repo.set_installed_version(oem.id, plan["installed"])
    _tell_oem(
        oem,
        plan,
        f"{oem.brand_name} {plan['target']} was not installed",
        [
            f"The upgrade did not complete and your instance stays on {plan['installed']}.",
            "Our release team has been alerted and will contact you.",
        ],
        key="failed",
    )
    alert_vendor(
        f"OEM {oem.id}: delivery of {plan['target']} {status}",
        [outcome],
        key=f"delivery_failed:{oem.id}:{plan['target']}",
    )
    raise AirflowFailException(f"OEM {oem.id!r}: {outcome}")


# -- 7-8. docs, record and notify -------------------------------------------------------------------
def publish_docs(plan: dict) -> str:
    oem = registry().get(plan["oem_id"])
    notes = _delta_notes(plan, Audience.oem(oem, load_vendor()))
    return outbound.apply_docs_strategy(
        repository(), oem, notes, kind="delivery_notes", scope_key=plan["target"], page_key=f"releases/{plan['target']}"
    )


def notify_delivered(plan: dict) -> None:
    oem = registry().get(plan["oem_id"])
    local = pendulum.now(oem.timezone).format("D MMMM YYYY HH:mm")
    _tell_oem(
        oem,
        plan,
        f"Your {oem.brand_name} instance now runs {plan['target']}",
        [
            f"Upgraded from {plan['installed']} to {plan['target']} on {local} ({oem.timezone}).",
            f"{len(plan['changes'])} change(s), all signed off by you, are now live.",
        ],
        key="installed",
        with_notes=True,
    )
