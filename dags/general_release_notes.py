"""
### general_release_notes: the four-weekly general release notes

Runs once per notes window of the train (two releases, four weeks), on the day of the
window's last release.

1. **notes_window** says which window the run publishes, and why;
   **wait_for_releases** (deferred, no worker slot) until both releases of the window
   are settled in the release database (deployed, empty, rejected or failed, or never
   cut: a later release was cut without it, so nothing waits for it).
2. **publish_general_notes**: the notes of the window's releases that reached
   production, published on the vendor documentation portal (`ava_docs_portal`,
   page `release-notes/<window>`; publishing again overwrites, never duplicates).

OEMs get nothing from this run: an OEM's docs portal (or notes package) follows its
instance, and is updated by its `oem_delivery__<oem>` run for the release it installs,
with notes since the version it ran before.

Every publication is recorded in the release database. Trigger by hand with
`release_id` (any release of the window) to (re)publish a given window; with no
`release_id`, a manual run publishes the newest window whose releases are settled, one
of them in production (none: the run ends at once, saying so).
"""

import datetime as dt

from airflow.sdk import dag

from release_train_airflow import general_notes as step
from release_train_airflow.dag_defaults import dag_args, release_id_param, watch_for_failures
from release_train_airflow.operators import WaitForReleasesSettledOperator
from release_train_airflow.timetables import ReleaseTrainTimetable


@dag(
    schedule=ReleaseTrainTimetable("cycle"),
    tags=["release-train", "acceptance"],
    **dag_args(),
    doc_md=__doc__,
    params={
        "release_id": release_id_param(
            "Any release of the window to publish; empty: this run's (manual: newest settled)"
        ),
    },
)
def general_release_notes():
    window = step.notes_window()
    settled = WaitForReleasesSettledOperator(
        task_id="wait_for_releases", release_ids=window["release_ids"], poll_interval=300, max_wait=dt.timedelta(days=7)
    )
    settled >> step.publish_general_notes(window)
    watch_for_failures(window)


general_release_notes()
