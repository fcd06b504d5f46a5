"""
### Sign-off reminders and the staff digest (hourly)

Every hour, for each enabled OEM, the forecast of its next install
(`release-train forecast`) is read:

1. **Reminders**: an OEM with changes still pending gets a reminder at each of its
   `signoff_reminder_days` (config/oems.yaml, default 5, 2 and 1) before its sign-off
   deadline (install day's window opening minus `signoff_margin_days`, default 2). The
   reminder names every change still missing, its release and who owes it, the deadline
   and install time in the OEM's time zone, and what happens if nothing changes;
   white-labelled and guarded like every text to an OEM. Each is sent once per cycle and
   reminder day (a missed earlier reminder is not sent late).
2. **Digest**: the first run at or after 07:00 UTC each day sends vendor staff
   (`ava_notify`) which OEMs are in or out of their next install day, and why
   (`release-train explain`'s answer).

Rerunning a run sends nothing twice (idempotency keys `signoff_reminder:<cycle>:<oem>:<days>d`
and `signoff_digest:<date>`). One OEM's broken channel fails its own task and the run, not
the others.
"""

from airflow.sdk import dag

from release_train_airflow import signoff_reminders as step
from release_train_airflow.dag_defaults import dag_args, watch_for_failures
from release_train_airflow.run_targets import enabled_oems


@dag(
    schedule="0 * * * *",
    tags=["release-train", "delivery"],
    **dag_args(),
    doc_md=__doc__,
)
def signoff_reminders():
    step.remind_oem.expand(oem_id=enabled_oems())
    watch_for_failures(step.digest())


signoff_reminders()
