"""End-to-end harness: real DAG runs (``dag.test()``) against the simulator's servers
and a real release database, one Airflow home (and at most one api-server) per
test worker.

``pipeline`` is the entry point: it points every connection at the simulator and at
the test's release database (SQLite or PostgreSQL, the test runs on both), and
runs DAGs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from release_pipeline.db import connect
from release_pipeline.db.migrate import upgrade
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.registry import load_registry
from simulator.connections import as_environment, release_db_connection, simulator_connections
from simulator.process import SimulatorClient
from tests.conftest import AIRFLOW_HOME, REPO

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        """One real run of ``dag_id`` in this process; returns the finished DagRun."""
        from release_train_airflow import resources

        resources.reset_caches()
        dag = self.dagbag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}; have {sorted(self.dagbag.dag_ids)}"
        return dag.test(run_conf=conf, logical_date=logical_date, run_after=run_after)

    @staticmethod
    def task_states(dag_run) -> dict[str, str]:
        """``task_id`` (``task_id[i]`` for mapped ones) -> state."""
        states = {}
        for ti in dag_run.get_task_instances():
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[name] = str(getattr(ti.state, "value", ti.state))
        return states


@pytest.fixture
def pipeline(release_db_url, simulator, sim, dagbag, monkeypatch) -> Pipeline:
    connections = simulator_connections(simulator.endpoints, load_registry().oems.values())
    connections["release_db"] = release_db_connection(release_db_url)
    for name, value in as_environment(connections).items():
        monkeypatch.setenv(name, value)
    repo = ReleaseRepository.from_url(release_db_url)
    yield Pipeline(repo=repo, sim=sim, db_url=release_db_url, connections=connections, dagbag=dagbag)
    repo.engine.dispose()


class AirflowApi:
    """A real ``airflow api-server`` on this worker's metadata DB, for what only the
    REST API does in tests: answering human-in-the-loop tasks, serving plugins."""

    def __init__(self, port: int, log: Path):
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        self._token: str | None = None

    def client(self) -> httpx.Client:
        if self._token is None:
            answer = httpx.post(f"{self.base_url}/auth/token", json={"username": "admin", "password": "admin"})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return httpx.Client(
            base_url=f"{self.base_url}/api/v2", headers={"Authorization": f"Bearer {self._token}"}, timeout=30
        )


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
def airflow_api(airflow_metadata_db, api_release_db_url, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = {**os.environ, **as_environment({"release_db": release_db_connection(api_release_db_url)})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = AirflowApi(port, log)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{api.base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
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
