"""
### oem_delivery__&lt;oem&gt;: the four-weekly upgrade of one OEM's instance

One DAG per enabled OEM of `config/oems.yaml`, on the train's delivery cycle. A run
starts when the cycle's release is cut and settles on install day (the release date +
`delivery_offset_days`), inside the OEM's maintenance window:

1. **plan_delivery**: what the run aims at as things stand (the newest release in
   production; param `target_release` overrides), checked against the instance over
   SSH; recorded as `waiting` so the CLI and the portal show it.
2. **wait_for_install_date** (deferred), then **aim_on_install_day**: the aim again
   (the cycle's release has reached production by now, unless QA or a freeze held it);
   the OEM is asked for any production change it was never asked about.
3. **install**, one task for the last stretch, so a sign-off starts the install within
   seconds: the approval gate (deferred; the triggerer's shared poller reads the
   approvals, woken by NOTIFY on PostgreSQL) ends when every change up to the aim is
   approved, or when install day's window opens (the sign-off deadline; OEMs with
   `install_when_approved` may approve until the cycle ends). Then the target settles:
   the newest production release approved in full; one not approved in full is
   recorded and told (`rejected` / `skipped: not approved by install day`), and an
   earlier fully approved one is installed instead. Then the maintenance window
   (deferred), the preflight (instance healthy), and the install: freeze and window
   checked again, the instance's lock taken, the sign-off read a last time (from then
   on it is closed), the install run over SSH with a timeout, once per attempt. A
   retry starts at the gate again.
4. **verify** (health polled for `verify_grace_seconds`); on failure **recover** rolls
   back, records it, alerts the vendor and tells the OEM.
5. **publish_docs**: the OEM's docs for the installed release (notes since the version it
   ran); 6. **notify_delivered**.

Every outcome is recorded in the release database's `deliveries` table with its reason.
"""

from airflow.sdk import Param, TriggerRule, dag, get_parsing_context

from release_pipeline.registry import Oem, load_registry
from release_train_airflow import delivery as steps
from release_train_airflow.dag_defaults import (
    attach_params,
    dag_args,
    notify_failed_runs,
    release_id_param,
    validated_params,
)
from release_train_airflow.delivery import DeliveryStep, InstallWhenSignedOffOperator
from release_train_airflow.timetables import ReleaseTrainTimetable

# Built once for every OEM: parse time grows with the fleet (bench/dag_parse.py).
DELIVERY_CYCLE = ReleaseTrainTimetable("cycle")
DELIVERY_PARAMS = validated_params(
    {
        "target_release": release_id_param("Release to install (YYYY.NN); empty: the newest approved in production"),
        "dry_run": Param(False, type="boolean", description="Plan only: record and install nothing"),
        "approval_deadline": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Sign-off due then; empty: when install day's maintenance window opens",
        ),
        "gate_poll_seconds": Param(60, type="number", minimum=0.1, description="Approval gate poll interval"),
        "verify_grace_seconds": Param(300, type="number", minimum=0, description="Health may settle this long"),
    }
)


def oem_delivery(oem: Oem):
    @dag(
        dag_id=f"oem_delivery__{oem.id}",
        schedule=DELIVERY_CYCLE,
        tags=["release-train", "delivery", "oem", f"oem:{oem.id}", f"tier:{oem.tier}"],
        **dag_args(),
        doc_md=steps.describe(oem, __doc__),
    )
    def deliver():
        started = DeliveryStep.of(steps.plan_delivery, oem.id)
        install_date = DeliveryStep.of(steps.wait_for_install_date, started.output)
        aimed = DeliveryStep.of(steps.aim_on_install_day, oem.id, started.output)
        installed = InstallWhenSignedOffOperator(
            task_id="install",
            plan=aimed.output,
            poll_interval="{{ params.gate_poll_seconds }}",
            pool="oem_installs",
            retries=3,
        )
        settled = installed.output["plan"]
        verified = DeliveryStep.of(steps.verify, settled, installed.output, retries=1)
        published = DeliveryStep.of(steps.publish_docs, settled)
        recovered = DeliveryStep.of(steps.recover, settled, retries=3, trigger_rule=TriggerRule.ONE_FAILED)
        # edges an XCom argument already makes are not drawn again: each costs parse time
        install_date >> aimed
        verified >> published >> DeliveryStep.of(steps.notify_delivered, settled)
        verified >> recovered

    # No failure watcher: every task reaches the leaf notify_delivered through all-success
    # tasks, so any failure fails the run (tests/dags/test_dag_integrity.py checks it), and
    # a watcher and its edge from every task would cost parse time for every OEM.
    return attach_params(notify_failed_runs(deliver()), DELIVERY_PARAMS)


# A worker running one task needs one DAG, not the whole fleet's.
parsing = get_parsing_context().dag_id
for enabled_oem in load_registry().enabled:
    if parsing in (None, f"oem_delivery__{enabled_oem.id}"):
        oem_delivery(enabled_oem)
