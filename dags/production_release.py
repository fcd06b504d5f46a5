"""
### production_release: the biweekly release to the vendor production

Runs on every release of the train (`config/calendar.yaml`, every second Thursday at
the release time), one run at a time.

1. **cut_release**: the changes merged since the previous release, from the change
   feed (`change_feed`), stored with the release in one transaction. A malformed feed
   answer fails here and records nothing; an empty release stops the run (skipped).
2. **wait_for_qa** (deferred, no worker slot) until the QA system (`qa_system`) has a
   verdict; a failed QA run blocks the release (recorded, vendor alerted).
3. **qa_signoff**: a QA lead approves or rejects in *Required actions* (a rejection
   needs a reason; no answer within 2 days counts as a rejection). A rejection is
   recorded with its reason and nothing is deployed.
4. **wait_for_freeze** (deferred): inside a freeze window of the calendar nothing is
   deployed; the release waits (its QA sign-off stays valid, the postponement is
   recorded and alerted) and goes out at the first moment after the freeze.
5. **deploy** looks at the freeze once more, then goes through the production deploy
   API (`ava_production`), **wait_for_deploy** (deferred), then **verify_production**:
   a smoke check of its health endpoint. A failure is recorded, alerted to
   `ava_notify`, and fails the run.
6. **open_signoff** records a pending approval per enabled OEM x change, and
   **notify_oem** sends each OEM its white-labelled notes (dated the day it really
   reached production) and how to sign off (one task
   per OEM: one OEM's channel being down never holds up the others;
   **report_notifications** alerts and fails the run for the ones not reached).

Re-running any step for the same release duplicates nothing (idempotency keys in the
release database); a release already in production goes from the cut straight to
**open_signoff** (**steps_left**). Trigger it by hand with `release_id` to (re)run a
given release, and `dry_run` to see what it would do: nothing is recorded, deployed or
sent. With no `release_id`, a manual run acts on the newest release in production (the
first task says which, and why); with none there, it ends at once.
"""

import datetime as dt

import pendulum
from airflow.sdk import Param, TriggerRule, dag, task

from release_train_airflow import acceptance
from release_train_airflow.dag_defaults import default_args, release_id_param, watch_for_failures
from release_train_airflow.operators import (
    QaSignoffOperator,
    WaitForDeployMomentOperator,
    WaitForHttpStatusOperator,
)
from release_train_airflow.timetables import ReleaseTrainTimetable

CUT = "ti.xcom_pull(task_ids='cut_release')"
RELEASE = "{{ " + CUT + "['release_id'] }}"


@dag(
    schedule=ReleaseTrainTimetable("release"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["release-train", "acceptance"],
    default_args=default_args(),
    doc_md=__doc__,
    params={
        "release_id": release_id_param(
            "Release to run (YYYY.NN); empty: this run's release (manual: the newest in production)"
        ),
        "dry_run": Param(False, type="boolean", description="Show what would happen; record, deploy and send nothing"),
    },
)
def production_release():
    @task
    def cut_release(params=None, data_interval_end=None) -> dict:
        return acceptance.cut_release(data_interval_end, params["release_id"], params["dry_run"])

    @task
    def check_qa_verdict(cut: dict, verdict: str) -> None:
        acceptance.check_qa_verdict(cut["release_id"], verdict)

    @task(retries=0)
    def deploy(cut: dict) -> str:
        return acceptance.deploy(cut["release_id"])

    @task(retries=0)
    def verify_production(cut: dict, deployment_status: str) -> None:
        acceptance.verify_production(cut["release_id"], deployment_status)

    @task.branch
    def steps_left(cut: dict) -> list[str]:
        return acceptance.steps_left(cut["release_id"])

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def open_signoff(cut: dict) -> list[str]:
        return acceptance.open_signoff(cut["release_id"])

    @task(max_active_tis_per_dagrun=4)
    def notify_oem(cut: dict, oem_id: str) -> None:
        acceptance.notify_oem_of_release(cut["release_id"], oem_id)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report_notifications(cut: dict | None, oem_ids: list[str] | None) -> dict:
        release_id = cut["release_id"] if cut else None
        return acceptance.report_publications("release_notes", release_id, oem_ids, "Release notes")

    cut = cut_release()
    verdict = WaitForHttpStatusOperator(
        task_id="wait_for_qa",
        http_conn_id="qa_system",
        endpoint="releases/" + RELEASE,
        field="status",
        terminal_values=["passed", "failed"],
        poll_interval=60,
        max_wait=dt.timedelta(days=3),
    )
    signoff = QaSignoffOperator(
        task_id="qa_signoff",
        release_id=RELEASE,
        subject="QA sign-off: release " + RELEASE,
        body="{{ " + CUT + "['summary'] }}",
        params={"reason": Param("", type="string", description="Why (required when rejecting)")},
        defaults="Reject",
        response_timeout=dt.timedelta(days=2),
        # an instant answer (a bot) can get the first try marked failed by Airflow 3.3.2;
        # the retry goes on with the answer recorded (QaSignoffOperator.answer_of_earlier_try)
        retries=2,
    )
    freeze = WaitForDeployMomentOperator(task_id="wait_for_freeze", release_id=RELEASE)
    deployment = deploy(cut)
    deployed = WaitForHttpStatusOperator(
        task_id="wait_for_deploy",
        http_conn_id="ava_production",
        endpoint="deployments/{{ ti.xcom_pull(task_ids='deploy') }}",
        field="status",
        terminal_values=["succeeded", "failed"],
        poll_interval=15,
        max_wait=dt.timedelta(hours=2),
    )
    oem_ids = open_signoff(cut)
    steps_left(cut) >> [verdict, oem_ids]
    check_qa_verdict(cut, verdict.output) >> signoff >> freeze >> deployment >> deployed
    verify_production(cut, deployed.output) >> oem_ids
    report_notifications(cut, oem_ids) << notify_oem.partial(cut=cut).expand(oem_id=oem_ids)
    watch_for_failures(cut)


production_release()
