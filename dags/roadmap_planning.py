"""
### Roadmap planning (weekly)

Every Monday 07:00 UTC (a manual run: as of when it is triggered). **planning_horizon**
first says the moment and the two delivery cycles it plans for, and why.

1. **Feedback requests**: each enabled OEM whose `feedback_cadence_weeks` (config/oems.yaml)
   has passed since it was last asked gets a request on its notification channel, with a
   link to the OEM portal's feedback form.
2. **Prioritise**: the vendor's roadmap items (config/roadmap.yaml and the items staff
   published with `release-train roadmap publish`) are ranked by OEM demand (required above
   suggested, weighted by how many OEMs ask and their tier, recent asks weighing more) for
   the next two delivery cycles (about two months); each item shows the release that brings
   it to OEM instances. Asks on no item stay private to their OEM and are listed for staff
   (`release-train roadmap list`). The snapshot, the reason for each rank and what changed
   since the previous snapshot are stored in the release database (`roadmap_snapshots`).
3. **Roadmap update**: every enabled OEM receives the ranked items in the vendor's words,
   white-labelled, with other OEMs' asks only as counts and what changed since the previous
   update (or that nothing did).
4. **Report**: fails the run naming each OEM that could not be served; one OEM's broken
   channel never stops the others.

Rerunning a run sends nothing twice. The ranking is explained in
`include/release_pipeline/roadmap.py`.
"""

from airflow.sdk import dag

from release_train_airflow import roadmap_planning as step
from release_train_airflow.dag_defaults import dag_args, watch_for_failures
from release_train_airflow.run_targets import enabled_oems


@dag(
    schedule="0 7 * * 1",
    tags=["release-train", "roadmap"],
    **dag_args(),
    doc_md=__doc__,
)
def roadmap_planning():
    due, snapshot_id, oems = step.oems_due_for_feedback(), step.prioritise(), enabled_oems()
    step.planning_horizon() >> [due, snapshot_id, oems]
    asked = step.request_feedback.expand(oem_id=due)
    sent = step.send_roadmap_update.partial(snapshot_id=snapshot_id).expand(oem_id=oems)
    reported = step.report.override(retries=0)()
    [asked, sent] >> reported
    watch_for_failures(reported)


roadmap_planning()
