"""The production shape of docker-compose.yaml, run natively (no Docker engine here):
PostgreSQL for the Airflow metadata and the release database, the CeleryExecutor with
a worker on Redis, the triggerer. A real DAG run triggered through the REST API
succeeds, its e-mail to the OEM goes out from the worker through the SMTP provider, and
stopping the stack leaves nothing running."""

from __future__ import annotations

import pendulum
import psutil
import pytest
import redis

from devstack.demo_config import emailing_config
from devstack.fleet import approve_all, seed_deployed_release
from devstack.stack import Stack, StackConfig, free_port
from simulator.mailbox import parse, parts
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

BASELINE, TARGET = "2026.20", "2026.22"
REDIS_DB = 7  # a database of the local Redis used by nothing else


def test_celery_executor_on_postgresql_runs_a_delivery_through_the_rest_api(tmp_path, postgres_databases):
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    metadata = postgres_databases.create("rt_airflow").replace("postgresql://", "postgresql+psycopg://", 1)
    config = StackConfig(
        home=tmp_path / "stack",
        api_port=free_port(),
        executor="CeleryExecutor",
        metadata_url=metadata,
        release_db_url=postgres_databases.create("rt_release"),
        celery_broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
        celery_workers=1,
        baseline_release=BASELINE,
        demo_changes=False,
        log_server_ports=None,
        config_dir=emailing_config(REPO / "config", tmp_path / "config"),  # OEMs e-mailed, as make up does
    )
    stack = Stack(config)
    started: list[psutil.Process] = []
    try:
        stack.start()
        started = [
            p
            for child in stack.supervisor.children
            for p in [psutil.Process(child.process.pid), *psutil.Process(child.process.pid).children(recursive=True)]
        ]
        assert {c.name for c in stack.supervisor.children} == {
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            "celery-worker-0",
        }
        repo = stack.repository()
        approve_all(repo, "nimbus", seed_deployed_release(repo, TARGET, ["nimbus"]), actor="nina")
        stack.wait_for_dag("oem_delivery__nimbus")
        run_id = stack.trigger(
            "oem_delivery__nimbus",
            {
                "target_release": TARGET,
                "gate_poll_seconds": 1,
                "approval_deadline": pendulum.now("UTC").add(minutes=15).isoformat(),
            },
        )
        state = stack.wait_for_run("oem_delivery__nimbus", run_id, timeout=420)
        assert state == "success", stack.task_states("oem_delivery__nimbus", run_id)
        install = stack.task_instance("oem_delivery__nimbus", run_id, "install")
        assert install["pool"] == "oem_installs"
        worker_log = (stack.home / "logs" / "components" / "celery-worker-0.log").read_text()
        assert "Executing workload in Celery" in worker_log and "task_id=install/" in worker_log
        assert repo.delivery("nimbus", TARGET).status == "installed"
        assert stack.sim.state()["oems"]["nimbus"]["version"] == TARGET
        # the delivery update went out by e-mail, from the worker, once
        (mail,) = [parse(m["raw"]) for m in stack.sim.mail("nimbus")]
        assert mail["From"] == "Nimbus Connect Releases <no-reply@nimbus.example>"
        assert set(parts(mail)) == {"text/plain", "text/html"}
        assert mail["Subject"].endswith(f"now runs {TARGET}")
        assert repo.side_effect(f"delivery:installed:nimbus:{TARGET}:1").kind == "email"
        assert "task_id=notify_delivered/" in worker_log
        repo.engine.dispose()
    finally:
        stack.stop()
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
