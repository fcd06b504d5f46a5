"""
### oem_rollbacks: rollbacks OEMs asked for (every 15 minutes)

An OEM reports a regression on the release its instance runs and may ask to go back to
the version it ran before (portal or API); staff approve or refuse with
`release-train rollback approve|refuse ID --reason` (docs/rollbacks.md). Every 15
minutes, for each enabled OEM:

1. **roll_back**: the OEM is told each staff decision not told yet (once per request);
   an approved rollback runs once the OEM's maintenance window is open outside a release
   freeze: the OEM's rollback command over SSH under the instance's lock, then the health
   check. The delivery of the rolled-back release is recorded `rolled_back` in
   `deliveries`, the instance's version goes back, the approvals of what it no longer
   runs are withdrawn (the next cycle asks for them again), its docs page says so, the
   vendor is alerted and the OEM told. A rollback that does not bring the instance back
   is recorded `failed` and alerted.

The release team's alert of a regression report is the DAG `regression_alerts` (every minute).

One OEM's broken instance or channel fails its own task and the run, not the others.
"""

from airflow.sdk import dag

from release_train_airflow import rollbacks as step
from release_train_airflow.dag_defaults import dag_args, notify_failed_runs
from release_train_airflow.run_targets import enabled_oems


@dag(
    schedule="*/15 * * * *",
    tags=["release-train", "delivery"],
    **dag_args(),
    doc_md=__doc__,
)
def oem_rollbacks():
    step.roll_back.expand(oem_id=enabled_oems())


notify_failed_runs(oem_rollbacks())
