"""
### general_release_notes: the four-weekly general release notes

Runs once per notes window of the train (two releases, four weeks), on the day of the
window's last release.

1. **wait_for_releases** (deferred, no worker slot) until both releases of the window
   are settled in the release database (deployed, empty, rejected or failed).
2. **publish_general_notes**: the notes of the window's releases that reached
   production, published on the vendor documentation portal (`ava_docs_portal`,
   page `release-notes/<window>`; publishing again overwrites, never duplicates).
3. **publish_oem_notes**, one task per enabled OEM, applies its docs strategy:
   `ava` publishes the white-labelled notes on the OEM's portal (`oem_<id>_docs`);
   `oem` sends the OEM the notes package (Markdown and HTML) through `oem_<id>_notify`
   and records that publishing is the OEM's. A failing portal is retried and never
   holds up the other OEMs; **report_docs** alerts the vendor and fails the run for
   the OEMs left out.

Every publication is recorded in the release database. Trigger by hand with
`release_id` (any release of the window) to (re)publish a given window.
"""

import datetime as dt

import pendulum
from airflow.sdk import TriggerRule, dag, task

from release_train_airflow import acceptance
from release_train_airflow.dag_defaults import default_args, release_id_param, watch_for_failures
from release_train_airflow.operators import WaitForReleasesSettledOperator
from release_train_airflow.timetables import ReleaseTrainTimetable


@dag(
    schedule=ReleaseTrainTimetable("cycle"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["release-train", "acceptance"],
    default_args=default_args(),
    doc_md=__doc__,
    params={
        "release_id": release_id_param("Any release of the window to publish; empty: this run's window"),
    },
)
def general_release_notes():
    @task(multiple_outputs=True)
    def notes_window(params=None, data_interval_end=None) -> dict:
        return acceptance.notes_window(data_interval_end, params["release_id"])

    @task
    def publish_general_notes(window: dict) -> list[str]:
        return acceptance.publish_general_notes(window)

    @task(max_active_tis_per_dagrun=4)
    def publish_oem_notes(window: dict, oem_id: str) -> str:
        return acceptance.publish_oem_notes(window, oem_id)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report_docs(window: dict | None, oem_ids: list[str] | None) -> dict:
        key = window["key"] if window else None
        return acceptance.report_publications("general_notes", key, oem_ids, "Release notes docs")

    window = notes_window()
    settled = WaitForReleasesSettledOperator(
        task_id="wait_for_releases",
        release_ids=window["release_ids"],
        poll_interval=300,
        max_wait=dt.timedelta(days=7),
    )
    oem_ids = publish_general_notes(window)
    settled >> oem_ids
    report_docs(window, oem_ids) << publish_oem_notes.partial(window=window).expand(oem_id=oem_ids)
    watch_for_failures(window)


general_release_notes()
