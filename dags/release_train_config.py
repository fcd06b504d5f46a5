"""
### Release train configuration

`config/calendar.yaml` and `config/oems.yaml` are validated every time this file is
parsed. A broken OEM entry makes **this file** fail to import, so the error (file,
line, OEM, field) appears in the Airflow UI under *DAG Import Errors*; the valid
OEMs keep their DAGs, which are generated from the same registry.

Trigger `release_train_config_check` to also verify that every Airflow connection
the registry names exists, that every enabled OEM's SSH connection pins the instance's
host key (`host_key` extra; without one the installs refuse to connect), and that the
release database schema is current.
Locally, `make check-config` runs the same validation from a shell.
"""

import pendulum
from airflow.sdk import dag, task

from release_pipeline.registry import load_registry
from release_train_airflow.dag_defaults import default_args, notify_failed_runs

load_registry().raise_for_errors()  # reading config files only; shows up as an import error


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["release-train", "ops"],
    default_args=default_args(retries=0),
    doc_md=__doc__,
)
def release_train_config_check():
    @task
    def check_connections() -> list[str]:
        from release_train_airflow.checks import missing_connections

        missing = missing_connections(load_registry())
        if missing:
            raise ValueError("missing Airflow connections: " + "; ".join(missing))
        return []

    @task
    def check_ssh_host_keys() -> list[str]:
        from release_train_airflow.checks import unpinned_ssh_connections

        unpinned = unpinned_ssh_connections(load_registry())
        if unpinned:
            raise ValueError("SSH connections without a pinned host key: " + "; ".join(unpinned))
        return []

    @task
    def check_release_db() -> str:
        from release_train_airflow.checks import release_db_revision

        return release_db_revision()

    check_connections()
    check_ssh_host_keys()
    check_release_db()


notify_failed_runs(release_train_config_check())
