"""
### production_release: the biweekly release to the vendor production

One run per release of the train (`config/calendar.yaml`), one at a time.

1. **cut_release**: the changes merged since the previous release, from `change_feed`,
   stored with the release in one transaction (a malformed feed answer records nothing;
   an empty release stops the run). **steps_left**: a release already in production goes
   straight to step 6.
2. **wait_for_qa** (deferred) for the verdict of `qa_system`; a failed QA run blocks the
   release (recorded, vendor alerted).
3. **qa_signoff**: a QA lead approves or rejects in *Required actions* (a rejection needs
   a reason; no answer within 2 days rejects). Nothing rejected is deployed.
4. **wait_for_freeze** (deferred): inside a freeze the release waits (its sign-off stays
   valid, the postponement is recorded and alerted) until the first moment after it.
5. **deploy** (freeze checked once more) through `ava_production`, **wait_for_deploy**,
   **verify_production** (smoke check); a failure is recorded, alerted, fails the run.
6. **open_signoff** asks each enabled OEM about each change; **notify_oem** sends each
   OEM its white-labelled notes (one task per OEM); **report_notifications** fails the
   run for the ones not reached.

Re-running duplicates nothing (idempotency keys). By hand: `release_id` (re)runs a
release, `dry_run` records, deploys and sends nothing. With no `release_id` a manual run
acts on the newest release in production (its first task says which and why); with
none there, it ends at once.
"""

import datetime as dt

from airflow.sdk import Param, dag

from release_train_airflow import production_release as step
from release_train_airflow.dag_defaults import dag_args, release_id_param, watch_for_failures
from release_train_airflow.operators import QaSignoffOperator, WaitForDeployMomentOperator, WaitForHttpStatusOperator
from release_train_airflow.timetables import ReleaseTrainTimetable


@dag(
    schedule=ReleaseTrainTimetable("release"),
    tags=["release-train", "acceptance"],
    **dag_args(),
    doc_md=__doc__,
    params={
        "release_id": release_id_param("Release to run (YYYY.NN); empty: this run's (manual: newest in production)"),
        "dry_run": Param(False, type="boolean", description="Show what would happen; record, deploy and send nothing"),
    },
)
def production_release():
    cut = step.cut_release()
    verdict = WaitForHttpStatusOperator(
        task_id="wait_for_qa",
        http_conn_id="qa_system",
        endpoint=cut["qa_endpoint"],
        field="status",
        terminal_values=["passed", "failed"],
        poll_interval=60,
        max_wait=dt.timedelta(days=3),
    )
    signoff = QaSignoffOperator(
        task_id="qa_signoff",
        release_id=cut["release_id"],
        subject=cut["signoff_subject"],
        body=cut["summary"],
        params={"reason": Param("", type="string", description="Why (required when rejecting)")},
        defaults="Reject",
        response_timeout=dt.timedelta(days=2),
        # an instant answer (a bot) can get the first try failed by Airflow 3.3.2; the
        # retry goes on with the answer recorded (QaSignoffOperator.answer_of_earlier_try)
        retries=2,
    )
    freeze = WaitForDeployMomentOperator(task_id="wait_for_freeze", release_id=cut["release_id"])
    deployment = step.deploy.override(retries=0)(cut)
    deployed = WaitForHttpStatusOperator(
        task_id="wait_for_deploy",
        http_conn_id="ava_production",
        endpoint=deployment["status_endpoint"],
        field="status",
        terminal_values=["succeeded", "failed"],
        poll_interval=15,
        max_wait=dt.timedelta(hours=2),
    )
    oem_ids = step.open_signoff(cut)
    step.steps_left(cut) >> [verdict, oem_ids]
    step.check_qa_verdict(cut, verdict.output) >> signoff >> freeze >> deployment >> deployed
    step.verify_production.override(retries=0)(cut, deployed.output) >> oem_ids
    notified = step.notify_oem.override(max_active_tis_per_dagrun=4).partial(cut=cut).expand(oem_id=oem_ids)
    step.report_notifications.override(retries=0)(cut, oem_ids) << notified
    watch_for_failures(cut)


production_release()
