"""
### regression_alerts: the release team hears of a regression within a minute

An OEM reports a regression on the release its instance runs in the portal or the API
(docs/rollbacks.md). The portal holds no channel secrets (docs/portal-security.md), so
every minute this DAG sends the vendor's release managers (`ava_notify`) the alert of
each report not alerted yet, oldest first, once per report (key `regression:<oem>:<id>`),
and marks it alerted. A report whose alert fails stays pending and is tried again in the
next run; the others still go out.
"""

from airflow.sdk import dag

from release_train_airflow import rollbacks as step
from release_train_airflow.dag_defaults import dag_args, notify_failed_runs


@dag(
    schedule="* * * * *",
    tags=["release-train", "delivery"],
    **dag_args(),
    doc_md=__doc__,
)
def regression_alerts():
    step.alert_regressions()


notify_failed_runs(regression_alerts())
