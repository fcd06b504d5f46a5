"""Operators of the release train: deferrable waits and the QA sign-off."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator, XComArg
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from release_pipeline.run_targets import SETTLED
from release_train_airflow.triggers import (
    GATE_MAX_OUTAGE_SECONDS,
    ApprovalGateTrigger,
    HitlAnswerTrigger,
    HttpStatusTrigger,
    MomentTrigger,
    ReleasesSettledTrigger,
)


def takes_upstream_results(task: BaseOperator, value: Any) -> Any:
    """Makes ``task`` a downstream of every task whose result (an ``XComArg``, also
    inside lists and dicts) ``value`` holds, as a templated field would; the task's
    :class:`UpstreamResults` field holding ``value`` is rendered with its templates
    (every try and every resume).

    Not a templated field: a templated ``XComArg`` is written into the serialized DAG
    as a Jinja string, after a configuration read, for every field of every task; the
    fleet's DAG file has several per OEM (bench/dag_parse.py)."""
    XComArg.apply_upstream_relationship(task, value)
    return value


class UpstreamResults:
    """An operator's ``upstream_fields`` (set with :func:`takes_upstream_results`) are
    rendered when its templates are, by Airflow's own ``render_template``, as a
    templated field would be, but are left out of the serialized DAG."""

    upstream_fields: tuple[str, ...] = ()

    def render_template_fields(self, context, jinja_env=None) -> None:
        jinja_env = jinja_env or self.get_template_env()
        super().render_template_fields(context, jinja_env)
        for name in self.upstream_fields:
            setattr(self, name, self.render_template(getattr(self, name), context, jinja_env))


class CheckThenDeferOperator(BaseOperator):
    """Checks once in the worker; when not done yet, defers to a trigger (no worker
    slot held while waiting) and fails loudly on a deadline or a bad event."""

    def __init__(
        self,
        *,
        poll_interval: float = 30,
        max_wait: dt.timedelta = dt.timedelta(days=1),
        deadline: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.deadline = deadline  # an absolute ISO deadline (templated by subclasses) wins over max_wait

    def check(self, context) -> Any | None:
        """The result when the wait is already over, else None."""
        raise NotImplementedError

    def make_trigger(self, context, deadline: str):
        raise NotImplementedError

    def deadline_reason(self, event: dict) -> str:
        """Why the wait failed, from the trigger's ``deadline`` event: what was still missing."""
        raise NotImplementedError

    def finish_at_deadline(self, context, event: dict) -> Any:
        """What a wait that reached its deadline ends in; by default a loud failure."""
        raise AirflowFailException(self.deadline_reason(event))

    def execute(self, context):
        result = self.check(context)
        if result is not None:
            return result
        deadline = self.deadline or pendulum.now("UTC").add(seconds=self.max_wait.total_seconds()).isoformat()
        self.log.info("not there yet; deferring (poll every %ss, until %s)", self.poll_interval, deadline)
        self.defer(trigger=self.make_trigger(context, deadline), method_name="execute_complete")

    def execute_complete(self, context, event: dict[str, Any]):
        status = event.get("status")
        if status == "deadline":
            return self.finish_at_deadline(context, event)
        if status != "done":
            raise AirflowException(f"{self.task_id}: unexpected trigger event {event!r}")
        return self.result_of(event)

    def result_of(self, event: dict) -> Any:
        return event


class WaitForHttpStatusOperator(CheckThenDeferOperator):
    """Waits until a JSON endpoint's ``field`` takes a terminal value, and returns it."""

    template_fields = ("endpoint",)

    def __init__(self, *, http_conn_id: str, endpoint: str, field: str, terminal_values: list[str], **kwargs):
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.field = field
        self.terminal_values = list(terminal_values)

    def check(self, context) -> str | None:
        from airflow.providers.http.hooks.http import HttpHook

        try:
            value = HttpHook("GET", http_conn_id=self.http_conn_id).run(self.endpoint).json().get(self.field)
        except Exception as exc:  # the trigger keeps polling through outages
            self.log.warning("%s/%s not answering yet: %s", self.http_conn_id, self.endpoint, exc)
            return None
        return value if value in self.terminal_values else None

    def make_trigger(self, context, deadline: str) -> HttpStatusTrigger:
        return HttpStatusTrigger(
            http_conn_id=self.http_conn_id,
            endpoint=self.endpoint,
            field=self.field,
            terminal_values=self.terminal_values,
            poll_interval=self.poll_interval,
            deadline=deadline,
        )

    def deadline_reason(self, event: dict) -> str:
        return (
            f"{self.http_conn_id}/{self.endpoint}: {self.field} still {event.get('value')!r} at "
            f"{event['deadline']}, expected one of {self.terminal_values}"
        )

    def result_of(self, event: dict) -> str:
        return event["value"]


class WaitForReleasesSettledOperator(CheckThenDeferOperator):
    """Waits until every release of ``release_ids`` is settled in the release DB: in a
    final status, or never cut (a later release was cut without it, so it never will be;
    ``release_pipeline.run_targets``).

    The trigger watches the statuses alone; every ``RECHECK_POLLS`` polls the worker
    looks again with the whole train in view, so a release passed over ends the wait
    within that time instead of at ``max_wait`` (which would hold later runs for days).
    """

    template_fields = ("release_ids",)
    FINAL = sorted(str(s) for s in SETTLED)
    RECHECK_POLLS = 12

    def __init__(self, *, release_ids, **kwargs):
        super().__init__(**kwargs)
        self.release_ids = release_ids

    def check(self, context) -> dict | None:
        from release_pipeline.run_targets import NEVER_CUT, settled_status
        from release_train_airflow.run_targets import recorded_statuses

        recorded = recorded_statuses()
        statuses = {r: settled_status(r, recorded) for r in self.release_ids}
        if any(s is None for s in statuses.values()):
            return None
        for release_id in (r for r, s in statuses.items() if s == NEVER_CUT):
            self.log.info(
                "release %s was never cut (the train moved on to %s): not waiting for it", release_id, max(recorded)
            )
        return statuses

    def execute(self, context):
        until = self.deadline or pendulum.now("UTC").add(seconds=self.max_wait.total_seconds()).isoformat()
        return self._wait(context, until)

    def _wait(self, context, until: str):
        result = self.check(context)
        if result is not None:
            return result
        leg = min(pendulum.parse(until), pendulum.now("UTC").add(seconds=self.poll_interval * self.RECHECK_POLLS))
        self.log.info(
            "releases %s not settled yet; deferring (poll every %ss, until %s)",
            self.release_ids,
            self.poll_interval,
            until,
        )
        self.defer(trigger=self.make_trigger(context, leg.isoformat()), method_name="resume", kwargs={"until": until})

    def resume(self, context, event: dict[str, Any], until: str):
        """A leg of the wait ended: on its own deadline, before the run's, look again."""
        if event.get("status") == "deadline" and pendulum.now("UTC") < pendulum.parse(until):
            return self._wait(context, until)
        return self.execute_complete(context, event)

    def make_trigger(self, context, deadline: str) -> ReleasesSettledTrigger:
        return ReleasesSettledTrigger(
            release_ids=list(self.release_ids),
            final_statuses=self.FINAL,
            poll_interval=self.poll_interval,
            deadline=deadline,
        )

    def deadline_reason(self, event: dict) -> str:
        return (
            f"releases {event['unsettled']} not settled by {event.get('deadline')} "
            f"(statuses: {event['statuses']}); check their production_release runs"
        )

    def result_of(self, event: dict) -> dict:
        return event["statuses"]


class ApprovalGateOperator(UpstreamResults, CheckThenDeferOperator):
    """Waits, in the triggerer, until the OEM's sign-off lets its delivery go on: every
    change up to the aim approved, or install day's window open (then what is approved
    is installed), or the cycle's deadline. Returns ``{"outcome", "summary"}``; what it
    means for the delivery is ``settle``'s business (it reads the sign-off again).

    ``plan`` is the delivery's plan on install day (``DeliveryProcess.plan``): its
    ``oem_id``, the ``installed`` release, the ``aim``, ``settle_at`` and ``deadline``.
    One upstream result, not five, and not templated (:func:`takes_upstream_results`).
    """

    template_fields = ("poll_interval",)
    upstream_fields = ("plan",)

    def __init__(self, *, plan, max_outage_seconds: float = GATE_MAX_OUTAGE_SECONDS, **kwargs):
        super().__init__(**kwargs)
        self.plan = takes_upstream_results(self, plan)
        self.max_outage_seconds = max_outage_seconds

    def execute(self, context):
        self.deadline = self.plan["deadline"]
        return super().execute(context)

    def check(self, context) -> dict | None:
        from release_pipeline.delivery import GateVerdict, gate_verdict
        from release_train_airflow.delivery import process

        try:
            steps = process(self.plan["oem_id"])
            signoff = steps.assess(self.plan["installed"], self.plan["aim"])
        except Exception as exc:  # the trigger polls through a release-database outage
            self.log.warning("approval gate: release database unavailable (%s); waiting in the triggerer", exc)
            return None
        verdict = gate_verdict(
            signoff,
            now=pendulum.now("UTC"),
            settle_at=pendulum.parse(self.plan["settle_at"]),
            deadline=pendulum.parse(self.plan["deadline"]),
        )
        self.log.info("approval gate: %s (%s)", verdict, signoff.summary())
        return None if verdict == GateVerdict.WAIT else {"outcome": str(verdict), "summary": signoff.summary()}

    def make_trigger(self, context, deadline: str) -> ApprovalGateTrigger:
        return ApprovalGateTrigger(
            oem_id=self.plan["oem_id"],
            after_release_id=self.plan["installed"],
            until_release_id=self.plan["aim"],
            poll_interval=float(self.poll_interval),
            settle_at=self.plan["settle_at"],
            deadline=deadline,
            max_outage_seconds=float(self.max_outage_seconds),
        )

    def deadline_reason(self, event: dict) -> str:  # the trigger decides deadlines itself
        return f"approval gate of {self.plan['oem_id']}: {event}"

    def result_of(self, event: dict) -> dict:
        return {"outcome": event["outcome"], "summary": event["summary"]}


class WaitForDeployMomentOperator(CheckThenDeferOperator):
    """Holds a release back from the vendor production while a freeze of the calendar
    covers the present, then lets it through at the first moment after the freeze.

    Checks once in the worker; inside a freeze it records the postponement and defers
    (no worker slot) to a clock trigger. On waking up it looks at the calendar again
    (a freeze may have been added or extended meanwhile) and defers again if needed.
    """

    template_fields = ("release_id",)

    def __init__(self, *, release_id: str, poll_interval: float = 60, **kwargs):
        super().__init__(poll_interval=poll_interval, **kwargs)
        self.release_id = release_id

    def execute(self, context):
        from release_train_airflow import production_release

        moment = production_release.deploy_hold(self.release_id)
        if moment is None:
            return {"release_id": self.release_id, "deploy_at": pendulum.now("UTC").isoformat()}
        self.log.info("release %s: inside a freeze; the deploy waits until %s", self.release_id, moment)
        trigger = MomentTrigger(moment=moment, poll_interval=self.poll_interval)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context, event: dict[str, Any]):
        if event.get("status") != "done":
            raise AirflowException(f"{self.task_id}: unexpected trigger event {event!r}")
        return self.execute(context)


class QaSignoffOperator(ApprovalOperator):
    """A QA lead approves or rejects a release in the Airflow UI (Required actions).

    The decision, its reason and who gave it go into the release DB; a rejection
    skips what follows (nothing is deployed) and alerts the vendor channel. A release
    already signed off in an earlier run is not asked about again.
    """

    template_fields = (*ApprovalOperator.template_fields, "release_id")

    def __init__(self, *, release_id: str, **kwargs):
        super().__init__(**kwargs)
        self.release_id = release_id

    def execute(self, context):
        from release_train_airflow import production_release

        earlier = production_release.earlier_qa_approval(self.release_id)
        if earlier:
            self.log.info("release %s was already signed off: %s", self.release_id, earlier)
            return {"chosen_options": [self.APPROVE], "params_input": {}, "earlier": earlier}
        ti = context["task_instance"]
        if ti.try_number > 1:
            # Airflow 3.3.2 races an answer given within about a second of the request (a
            # bot over REST): the scheduler sees the parking try exit while the answer has
            # already queued the resume, and fails that try. The task instance keeps its
            # HITL detail, answer included, but the provider's execute() would wipe it and
            # ask again. So a retry first looks for that answer; only the triggerer may
            # read HITL details, so the look-up is a (one-read) trigger.
            self.defer(trigger=HitlAnswerTrigger(ti_id=str(ti.id)), method_name="after_answer_lookup")
        return super().execute(context)

    def after_answer_lookup(self, context, event: dict[str, Any]):
        """Go on with the answer an earlier try got; without one, ask (again)."""
        if not event.get("answered"):
            self.log.info("no answer recorded by an earlier try (%s): asking", event.get("reason"))
            return super().execute(context)
        self.log.info(
            "going on with the answer given to an earlier try: %s by %s",
            event["chosen_options"],
            (event.get("responded_by_user") or {}).get("name"),
        )
        return self.execute_complete(
            context,
            {
                "chosen_options": event["chosen_options"],
                "params_input": event.get("params_input") or {},
                "responded_at": pendulum.parse(event["responded_at"]),
                "responded_by_user": event.get("responded_by_user"),
            },
        )

    def execute_complete(self, context, event: dict[str, Any]):
        """Record the decision first: on Reject the parent skips what follows by raising."""
        from release_train_airflow import production_release

        if "error" not in event:
            user = event.get("responded_by_user") or {}
            production_release.record_qa_signoff(
                self.release_id,
                approved=event["chosen_options"] == [self.APPROVE],
                actor=user.get("name") or user.get("id") or "no answer (timeout default)",
                reason=(event.get("params_input") or {}).get("reason") or None,
            )
        return super().execute_complete(context, event)
