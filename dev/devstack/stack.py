"""The whole release train on one machine: simulator, release database and the Airflow
components, started and stopped as one.

``make up`` runs the embedded default (SQLite, LocalExecutor); the end-to-end tests
and the benchmarks run the same class in other shapes (PostgreSQL metadata and the
CeleryExecutor, generated OEM registries, many gates).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pendulum
from sqlalchemy.engine import make_url

from devstack.airflow_env import LOCAL_USERS, airflow_environment
from devstack.leftovers import ProcessRecord
from devstack.supervisor import Supervisor, tail
from release_pipeline.config_loading import CONFIG_DIR_ENV
from release_pipeline.db import connect
from release_pipeline.db.migrate import upgrade
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar
from simulator.connections import as_environment, release_db_connection, simulator_connections
from simulator.process import SimulatorClient, SimulatorProcess

AIRFLOW = str(Path(sys.executable).parent / "airflow")
INSTALL_POOL = "oem_installs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StackConfig:
    home: Path
    api_port: int = 8080
    sim_http_port: int = 0
    sim_ssh_port: int = 0
    executor: str = "LocalExecutor"
    metadata_url: str | None = None  # None: SQLite in the home
    release_db_url: str | None = None  # None: SQLite in the home
    celery_broker_url: str | None = None
    celery_workers: int = 0
    config_dir: Path | None = None  # None: the repository's config/
    baseline_release: str | None = None  # None: the release of the previous delivery cycle
    demo_changes: bool = True
    parallelism: int = 8
    install_pool_slots: int = 8
    # the standard 8793/8794 log-server ports; None picks free ones (several stacks on one host)
    log_server_ports: tuple[int, int] | None = (8793, 8794)
    extra_env: dict[str, str] = field(default_factory=dict)


class AirflowApi:
    """The Airflow REST API as the local admin."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._token: str | None = None

    def client(self) -> httpx.Client:
        if self._token is None:
            user, password = next(iter(LOCAL_USERS.items()))
            answer = httpx.post(f"{self.base_url}/auth/token", json={"username": user, "password": password})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return httpx.Client(
            base_url=f"{self.base_url}/api/v2", headers={"Authorization": f"Bearer {self._token}"}, timeout=30
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class Stack:
    def __init__(self, config: StackConfig, record: ProcessRecord | None = None):
        """``record``: where every long-running process is written down as it starts (``make up``)."""
        self.config = config
        self.record = record
        self.home = config.home.resolve()
        self.release_db_url = config.release_db_url or f"sqlite:///{self.home / 'release.db'}"
        self.simulator: SimulatorProcess | None = None
        self.supervisor: Supervisor | None = None
        self.env: dict[str, str] = {}
        self.api = AirflowApi(f"http://127.0.0.1:{config.api_port}")
        self.baseline: str | None = None

    # -- start ------------------------------------------------------------------------------
    def start(self, timeout: float = 240, stopping: Callable[[], bool] = lambda: False) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        registry = load_registry(self._config_file("oems.yaml"))
        self.baseline = self.config.baseline_release or self._previous_cycle_release()
        self.seed_release_db(registry)
        self.simulator = SimulatorProcess(
            self.home / "simulator",
            http_port=self.config.sim_http_port,
            ssh_port=self.config.sim_ssh_port,
            oems=self._config_file("oems.yaml"),
            initial_version=self.baseline,
            demo=self.config.demo_changes,
        )
        endpoints = self.simulator.start(on_spawn=self._recorder("simulator", group=False))
        connections = simulator_connections(endpoints, registry.oems.values())
        connections["release_db"] = release_db_connection(self.release_db_url)
        self.env = {
            **os.environ,
            **airflow_environment(
                self.home,
                api_port=self.config.api_port,
                metadata_url=self.config.metadata_url,
                executor=self.config.executor,
                parallelism=self.config.parallelism,
            ),
            **as_environment(connections),
            "RELEASE_TRAIN_DB_URL": self.release_db_url,
            **self._log_server_env(),
            **self._celery_env(),
            **({CONFIG_DIR_ENV: str(self.config.config_dir)} if self.config.config_dir else {}),
            **self.config.extra_env,
        }
        self._airflow("db", "migrate")
        self.set_install_pool(self.config.install_pool_slots)
        self.supervisor = Supervisor(
            env=self.env,
            log_dir=self.home / "logs" / "components",
            on_start=lambda child: self._recorder(child.name, group=True)(child.process.pid),
        )
        self.supervisor.start("api-server", [AIRFLOW, "api-server", "--port", str(self.config.api_port)])
        for part in ("scheduler", "dag-processor", "triggerer"):
            self.supervisor.start(part, [AIRFLOW, part])
        for n in range(self.config.celery_workers):
            self.supervisor.start(
                f"celery-worker-{n}",
                [AIRFLOW, "celery", "worker", "--concurrency", "2", "--celery-hostname", f"worker{n}@%h"],
            )
        self._wait_for_api(timeout, stopping)

    def _recorder(self, name: str, group: bool) -> Callable[[int], None]:
        def record(pid: int) -> None:
            if self.record:
                self.record.add(name, pid, group=group)

        return record

    def _config_file(self, name: str) -> Path | None:
        return self.config.config_dir / name if self.config.config_dir else None

    def _previous_cycle_release(self) -> str:
        calendar = load_calendar(self._config_file("calendar.yaml"))
        return calendar.delivery_cycle(calendar.delivery_cycle_at(pendulum.now()).index - 1).release.id

    def seed_release_db(self, registry) -> None:
        """Migrate the release DB and record what the simulated instances run at start."""
        engine = connect(self.release_db_url)
        upgrade(engine)
        repo = ReleaseRepository(engine)
        baseline = load_calendar(self._config_file("calendar.yaml")).release_by_id(self.baseline)
        repo.record_baseline_release(baseline, actor="devstack", reason="the simulated OEM instances start on it")
        for oem in registry.oems.values():
            if repo.installed_version(oem.id) is None:
                repo.set_installed_version(oem.id, baseline.id, at=baseline.at)
        engine.dispose()

    def _log_server_env(self) -> dict[str, str]:
        worker, triggerer = self.config.log_server_ports or (free_port(), free_port())
        return {
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(triggerer),
        }

    def _celery_env(self) -> dict[str, str]:
        if "Celery" not in self.config.executor:
            return {}
        if not (self.config.celery_broker_url and self.config.metadata_url):
            raise ValueError("the CeleryExecutor needs a broker URL and a PostgreSQL metadata database")
        # Celery's database backend on the metadata database, through the same driver (psycopg)
        backend = make_url(self.config.metadata_url).set(drivername="postgresql+psycopg")
        return {
            "AIRFLOW__CELERY__BROKER_URL": self.config.celery_broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{backend.render_as_string(hide_password=False)}",
        }

    def set_install_pool(self, slots: int) -> None:
        """How many OEM installs may run at once, across all OEMs."""
        self._airflow("pools", "set", INSTALL_POOL, str(slots), "Concurrent OEM installs")

    def _airflow(self, *args: str) -> None:
        result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")

    def _wait_for_api(self, timeout: float, stopping: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while not stopping():
            if child := self.supervisor.exited():
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{tail(child.log)}")
            if self.api.healthy():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Airflow API after {timeout:.0f}s; logs in {self.supervisor.log_dir}")
            time.sleep(1)

    # -- use ---------------------------------------------------------------------------------
    @property
    def sim(self) -> SimulatorClient:
        return self.simulator.client()

    def repository(self) -> ReleaseRepository:
        return ReleaseRepository.from_url(self.release_db_url)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has registered ``dag_id``; then unpause it."""
        with self.api.client() as http:
            wait_until(lambda: http.get(f"/dags/{dag_id}").status_code == 200, timeout, f"DAG {dag_id} parsed")
            http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        with self.api.client() as http:
            answer = http.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
            answer.raise_for_status()
            return answer.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        try:
            with self.api.client() as http:
                return http.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        except httpx.TransportError as exc:  # a busy api-server (SQLite, 2 cores): ask again
            return f"unknown ({type(exc).__name__})"

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        return wait_until(
            lambda: (state := self.run_state(dag_id, run_id)) in ("success", "failed") and state,
            timeout,
            f"{dag_id} run {run_id} to finish",
        )

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        with self.api.client() as http:
            return http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").json()

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        with self.api.client() as http:
            listing = http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()
        return {
            ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"]
            for ti in listing["task_instances"]
        }

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.supervisor:
            self.supervisor.stop()
        if self.simulator:
            self.simulator.stop()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
