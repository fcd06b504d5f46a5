"""End-to-end harness: real DAG runs (``dag.test()``) against the simulator's servers
and a real release database, one Airflow home (and at most one api-server) per
test worker.

``pipeline`` is the entry point: it points every connection at the simulator and at
the test's release database (SQLite or PostgreSQL, the test runs on both), and
runs DAGs.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest
import yaml

from devstack.stack import AirflowApi, free_port
from release_pipeline.db import connect
from release_pipeline.db.migrate import upgrade
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import ReleaseCalendar, load_calendar
from simulator.connections import as_environment, release_db_connection, simulator_connections
from simulator.process import SimulatorClient
from tests.builders import TWO_OF_TWO, with_policy
from tests.conftest import AIRFLOW_HOME, REPO

AIRFLOW = str(Path(sys.executable).parent / "airflow")
_PARAM_DEFAULTS: dict[str, tuple] = {}  # each DAG's and its tasks' params before any test run


@pytest.fixture(scope="session")
def airflow_metadata_db():
    """This worker's Airflow metadata database, migrated once, with the install pool."""
    subprocess.run([AIRFLOW, "db", "migrate"], env=os.environ, check=True, capture_output=True)
    subprocess.run(
        [AIRFLOW, "pools", "set", "oem_installs", "8", "Concurrent OEM installs"],
        env=os.environ,
        check=True,
        capture_output=True,
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_metadata_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return bag


@dataclass
class Pipeline:
    """What an end-to-end test drives and inspects."""

    repo: ReleaseRepository
    sim: SimulatorClient
    db_url: str
    connections: dict[str, dict]
    dagbag: Any

    def run(self, dag_id: str, *, conf: dict | None = None, logical_date=None, run_after=None):
        """One real run of ``dag_id`` in this process; returns the finished DagRun.

        Deferred waits poll every 0.2 s instead of their production interval."""
        from release_train_airflow import resources
        from release_train_airflow.operators import CheckThenDeferOperator

        resources.reset_caches()
        dag = self.dagbag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}; have {sorted(self.dagbag.dag_ids)}"
        # dag.test() leaves a run's conf in the (shared) DAG object's params: each run
        # starts from the DAG's own, so a run with no conf is a run with no parameters
        defaults = _PARAM_DEFAULTS.setdefault(
            dag_id, (copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks})
        )
        dag.params = copy.deepcopy(defaults[0])
        for task in dag.tasks:
            task.params = copy.deepcopy(defaults[1][task.task_id])
        for task in dag.tasks:
            if isinstance(task, CheckThenDeferOperator):
                task.poll_interval = 0.2
        return dag.test(run_conf=conf, logical_date=logical_date, run_after=run_after)

    @staticmethod
    def task_states(dag_run) -> dict[str, str]:
        """``task_id`` (``task_id[i]`` for mapped ones) -> state."""
        states = {}
        for ti in dag_run.get_task_instances():
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[name] = str(getattr(ti.state, "value", ti.state))
        return states


# The end-to-end tests' own release calendar: the shipped train's dates without its real
# freeze windows, so no test depends on today's date falling outside them (a test that
# needs a freeze writes its own into ``test_config``).
TEST_CALENDAR = """\
timezone: Europe/Amsterdam
anchor: 2026-01-08
release_time: "10:00"
cadence_weeks: 2
releases_per_cycle: 2
delivery_offset_days: 7
freeze_windows: []
"""


@pytest.fixture
def test_config(tmp_path, monkeypatch) -> Path:
    """A copy of ``config/`` with the test calendar, used by every process the test starts in-process."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "calendar.yaml").write_text(TEST_CALENDAR)
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(config))
    return config


@pytest.fixture
def test_calendar(test_config):
    """``test_calendar(freeze_windows=[{"name": ..., "start": ..., "end": ...}])``: this
    test's calendar is :data:`TEST_CALENDAR` with the fields given (written into its
    ``test_config``, which every reader finds through ``$RELEASE_TRAIN_CONFIG_DIR``).
    Returns it loaded."""

    def use(**fields) -> ReleaseCalendar:
        calendar = {**yaml.safe_load(TEST_CALENDAR), **fields}
        (test_config / "calendar.yaml").write_text(yaml.safe_dump(calendar, sort_keys=False))
        return load_calendar()

    return use


@pytest.fixture
def pipeline(release_db_url, simulator, sim, dagbag, monkeypatch, test_config) -> Pipeline:
    connections = simulator_connections(simulator.endpoints, load_registry().oems.values())
    connections["release_db"] = release_db_connection(release_db_url)
    for name, value in as_environment(connections).items():
        monkeypatch.setenv(name, value)
    repo = ReleaseRepository.from_url(release_db_url)
    yield Pipeline(repo=repo, sim=sim, db_url=release_db_url, connections=connections, dagbag=dagbag)
    repo.engine.dispose()


class HitlAnswer(threading.Thread):
    """Answers a human-in-the-loop task over the REST API, as a person in the UI would,
    once the task asks (dag.test() waits for exactly that)."""

    def __init__(
        self,
        api: AirflowApi,
        dag_id: str,
        task_id: str,
        option: str,
        params_input: dict | None = None,
        min_age_seconds: float | None = None,
    ):
        super().__init__(daemon=True)
        if min_age_seconds is not None:  # 0: answer at once, as a bot would
            self.MIN_AGE_SECONDS = min_age_seconds
        self.api, self.dag_id, self.task_id = api, dag_id, task_id
        self.body = {"chosen_options": [option], "params_input": params_input or {}}
        self.answered: dict | None = None
        self.asked_at: str | None = None
        self.error: BaseException | None = None

    # Like a person, answer a request only once it has been up a moment. Seen with Airflow
    # 3.3.2 and the LocalExecutor: an answer within ~0.2 s of the task parking, before the
    # executor reported that first attempt's exit, got the task marked failed ("executor
    # reported success but the task instance is queued").
    MIN_AGE_SECONDS = 3

    def run(self) -> None:
        """Answer the first request of ``task_id`` that is still open and was made after
        this thread started: earlier tests' requests on the same metadata DB are
        history, not this test's question."""
        since = pendulum.now("UTC").subtract(seconds=1).isoformat()
        try:
            with self.api.client() as http:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    try:
                        open_requests = http.get(
                            f"/dags/{self.dag_id}/dagRuns/~/hitlDetails",
                            params={"task_id": self.task_id, "response_received": False, "created_at_gte": since},
                        ).json()["hitl_details"]
                    except httpx.TransportError:  # a busy api-server: ask again, as a person would
                        time.sleep(0.3)
                        continue
                    for request in open_requests:
                        ti = request["task_instance"]
                        age = pendulum.now("UTC") - pendulum.parse(request["created_at"])
                        if ti["state"] != "awaiting_input" and age.total_seconds() < 60:
                            continue  # dag.test() keeps the task queued while it waits
                        if age.total_seconds() < self.MIN_AGE_SECONDS:
                            continue
                        path = (
                            f"/dags/{self.dag_id}/dagRuns/{ti['dag_run_id']}"
                            f"/taskInstances/{self.task_id}/{ti['map_index']}/hitlDetails"
                        )
                        answer = http.patch(path, json=self.body)
                        if answer.status_code == 200:
                            self.asked_at = request["created_at"]
                            self.answered = answer.json()
                            return
                    time.sleep(0.3)
                raise TimeoutError(f"{self.dag_id}.{self.task_id} never asked for input")
        except BaseException as exc:  # reported by the test through .error
            self.error = exc


@pytest.fixture
def answer_hitl(airflow_api):
    """``answer_hitl(dag_id, task_id, "Approve")`` starts answering in the background."""
    threads = []

    def start(dag_id: str, task_id: str, option: str, params_input: dict | None = None) -> HitlAnswer:
        thread = HitlAnswer(airflow_api, dag_id, task_id, option, params_input)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(1)


@pytest.fixture(scope="session")
def api_release_db_url(tmp_path_factory) -> str:
    """The release database the api-server's plugins (the OEM portal) are pointed at
    through ``AIRFLOW_CONN_RELEASE_DB``, as ``make up`` does: one SQLite file per worker,
    shared by the tests using ``airflow_api`` (each uses its own release ids)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api-release-db') / 'release.db'}"
    engine = connect(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def api_config_dir(tmp_path_factory) -> Path:
    """The api-server's config: the shipped one, with orbitel signing off by two people
    (``tests.builders.TWO_OF_TWO``) for the portal's browser test of a sign-off policy."""
    config = tmp_path_factory.mktemp("api-config") / "config"
    shutil.copytree(REPO / "config", config)
    with_policy(config, "orbitel", TWO_OF_TWO)
    return config


@pytest.fixture(scope="session")
def airflow_api(airflow_metadata_db, api_release_db_url, api_config_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = {
        **os.environ,
        **as_environment({"release_db": release_db_connection(api_release_db_url)}),
        "RELEASE_TRAIN_CONFIG_DIR": str(api_config_dir),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = AirflowApi(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while not api.healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"api-server did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield api
    os.killpg(process.pid, 15)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
