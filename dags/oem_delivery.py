"""
### oem_delivery__&lt;oem&gt;: the four-weekly upgrade of one OEM's instance

One DAG per enabled OEM of `config/oems.yaml`, on the train's delivery cycle: it starts
when the cycle's release is out and installs it a week later, if the OEM approved
every change.

1. **plan_delivery**: the target release (param `target_release`, default the newest
   release of this cycle that reached production), the version the instance runs (over
   SSH, checked against the release database) and the changes in between. Already on
   target: a recorded no-op. An unknown release, a downgrade, missing connections or an
   instance on a version the release database does not know fail here, before anything
   touches the instance.
2. **wait_for_install_date** (deferred): release date + 7 days.
3. **approval_gate** (deferred; the triggerer polls the approvals table, one indexed
   query per poll): every change approved, go on; one rejection ends the wait at once
   (nothing installed, the OEM and the vendor told why); no decision by
   `approval_deadline` (default: the next cycle) skips the cycle, and the next cycle
   brings the changes again.
4. **wait_for_maintenance_window** (deferred) and **preflight**: no freeze window (else
   the cycle is skipped), inside the OEM's maintenance window, instance healthy.
5. **install** over SSH with the OEM's command template, in the `oem_installs` pool;
   transient failures are retried with backoff; an install that happened is not repeated.
6. **verify**: version and health; on any failure **recover** rolls back to the previous
   version, records it, tells the OEM and the vendor, and fails the run.
7. **publish_docs**: the OEM's docs strategy for this release; 8. **notify_delivered**.

Every outcome is recorded in the release database's `deliveries` table.
"""

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import Param, TriggerRule, dag, get_parsing_context, task

from release_pipeline.registry import Oem, load_registry
from release_train_airflow import delivery
from release_train_airflow.dag_defaults import (
    attach_params,
    default_args,
    release_id_param,
    validated_params,
    watch_for_failures,
)
from release_train_airflow.operators import ApprovalGateOperator
from release_train_airflow.timetables import ReleaseTrainTimetable

PLAN = "ti.xcom_pull(task_ids='plan_delivery')"
# Built once for every OEM: parse time grows with the fleet (bench/dag_parse.py).
DELIVERY_CYCLE = ReleaseTrainTimetable("cycle")
DELIVERY_PARAMS = validated_params(
    {
        "target_release": release_id_param("Release to install (YYYY.NN); empty: this cycle's"),
        "dry_run": Param(False, type="boolean", description="Plan only: record and install nothing"),
        "approval_deadline": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Give up waiting for sign-off then; empty: the next cycle",
        ),
        "gate_poll_seconds": Param(60, type="number", minimum=0.1, description="Approval gate poll interval"),
    }
)


def oem_delivery(oem: Oem):
    @dag(
        dag_id=f"oem_delivery__{oem.id}",
        schedule=DELIVERY_CYCLE,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["release-train", "delivery", "oem", f"oem:{oem.id}", f"tier:{oem.tier}"],
        default_args=default_args(),
        doc_md=delivery.describe(oem, __doc__),
    )
    def deliver():
        @task
        def plan_delivery(params=None, data_interval_end=None, run_id=None) -> dict:
            return delivery.plan(oem.id, data_interval_end, params, run_id)

        @task
        def act_on_sign_off(plan: dict, gate: dict) -> None:
            delivery.act_on_sign_off(plan, gate)

        @task
        def maintenance_opening(plan: dict) -> str:
            return delivery.next_maintenance_opening(plan)

        @task
        def preflight(plan: dict) -> None:
            delivery.preflight(plan)

        @task(pool="oem_installs", retries=3)
        def install(plan: dict) -> str:
            return delivery.install(plan)

        @task(retries=1)
        def verify(plan: dict, install_log: str) -> None:
            delivery.verify(plan, install_log)

        @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
        def recover(plan: dict) -> None:
            delivery.recover(plan)

        @task
        def publish_docs(plan: dict) -> str:
            return delivery.publish_docs(plan)

        @task
        def notify_delivered(plan: dict) -> None:
            delivery.notify_delivered(plan)

        plan = plan_delivery()
        install_date = DateTimeSensorAsync(
            task_id="wait_for_install_date", target_time="{{ " + PLAN + "['install_at'] }}"
        )
        gate = ApprovalGateOperator(
            task_id="approval_gate",
            oem_id=oem.id,
            after_release_id="{{ " + PLAN + "['installed'] }}",
            until_release_id="{{ " + PLAN + "['target'] }}",
            deadline="{{ " + PLAN + "['approval_deadline'] }}",
            poll_interval="{{ params.gate_poll_seconds }}",
        )
        window = DateTimeSensorAsync(task_id="wait_for_maintenance_window", target_time=maintenance_opening(plan))
        checked, installed = preflight(plan), install(plan)
        verified = verify(plan, installed)
        plan >> install_date >> gate
        act_on_sign_off(plan, gate.output) >> window >> checked >> installed
        verified >> publish_docs(plan) >> notify_delivered(plan)
        [checked, installed, verified] >> recover(plan)
        watch_for_failures(plan)

    return attach_params(deliver(), DELIVERY_PARAMS)


# A worker running one task needs one DAG, not the whole fleet's.
parsing = get_parsing_context().dag_id
for enabled_oem in load_registry().enabled:
    if parsing in (None, f"oem_delivery__{enabled_oem.id}"):
        oem_delivery(enabled_oem)
