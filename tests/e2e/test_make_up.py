"""``make up`` end to end: the real devstack on free ports, driven like a newcomer would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.stack import free_port, wait_until
from release_pipeline.db.repository import ReleaseRepository
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def this_checkout(env: dict[str, str]) -> dict[str, str]:
    """``python -m devstack`` of this checkout (dev/, include/), not of whatever the venv installed."""
    path = [str(REPO / "dev"), str(REPO / "include"), env.get("PYTHONPATH")]
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, path))}


class Devstack:
    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.log = home.parent / f"up-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        env = this_checkout({k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELEASE_TRAIN_DB"))})
        command = [sys.executable, "-m", "devstack", "--home", str(self.home), "--api-port", str(self.port)]
        command += ["--sim-http-port", "0", "--sim-ssh-port", "0"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.process

    def wait_until_up(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while "Release train is up" not in self.output():
            assert self.process.poll() is None, f"make up exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"make up not up after {timeout}s:\n{self.output()}"
            time.sleep(1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def api(self) -> httpx.Client:
        base = f"http://localhost:{self.port}"
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"}).json()
        return httpx.Client(
            base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30
        )

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout)


def test_make_up_serves_the_ui_runs_dags_and_stops_everything_on_ctrl_c(tmp_path):
    stack = Devstack(tmp_path / "home")
    stack.start()
    try:
        stack.wait_until_up()
        descendants = psutil.Process(stack.process.pid).children(recursive=True)
        assert len(descendants) >= 5  # simulator, api-server, scheduler, dag-processor, triggerer

        assert "login admin / admin" in stack.output()
        assert httpx.get(f"http://localhost:{stack.port}/").status_code == 200
        api = stack.api()
        plugins = [p["name"] for p in api.get("/plugins").json()["plugins"]]
        assert "release_train" in plugins
        # the OEM portal beside the UI, reaching the release DB (a forged token is looked up there)
        portal = httpx.get(
            f"http://localhost:{stack.port}/oem-portal/api/v1/me", headers={"Authorization": "Bearer rtp_x"}
        )
        assert (portal.status_code, portal.headers["content-type"]) == (401, "application/json")

        ready = json.loads((stack.home / "simulator" / "ready.json").read_text())
        assert httpx.get(f"{ready['http_url']}/health").json() == {"status": "ok"}

        repo = ReleaseRepository.from_url(f"sqlite:///{stack.home / 'release.db'}")
        installed = repo.installed_versions()
        assert set(installed) == {"kestrel", "nimbus", "orbitel", "tundra"}
        assert len({row.release_id for row in installed.values()}) == 1

        # a second `make up` while this one runs refuses instead of fighting over ports
        second = subprocess.run(
            [sys.executable, "-m", "devstack", "--home", str(stack.home)],
            cwd=REPO,
            env=this_checkout(dict(os.environ)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "already running" in second.stdout

        # the scheduler runs a DAG with the connections make up installed
        dag_id = "release_train_config_check"
        wait_until(lambda: api.get(f"/dags/{dag_id}").status_code == 200, 120, "the DAG to be parsed")
        api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        run = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None}).json()
        state = wait_until(
            lambda: (
                (s := api.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}").json()["state"]) in ("success", "failed")
                and s
            ),
            180,
            "the config check run",
        )
        assert state == "success", stack.output()
        first_clicks(api, stack)
    finally:
        code = stack.interrupt()
    assert code == 0, stack.output()
    assert "stopped" in stack.output()
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"

    # running it again on the same home is safe
    stack.start()
    try:
        stack.wait_until_up()
    finally:
        assert stack.interrupt() == 0


# what the first manual run of a DAG with no parameters does on a fresh `make up`, when it
# is not to finish: production_release cuts the release due now and waits for QA there (the
# simulator's QA system passes every release at once, so the run parks at the QA sign-off)
WAITS_THERE = {"production_release": "qa_signoff"}
FAILED = {"failed", "upstream_failed", "up_for_retry"}


def first_clicks(api: httpx.Client, stack: Devstack) -> None:
    """Every DAG, triggered with no parameters on a fresh stack (the ledger's rule L6),
    succeeds, or ends at once with its reason in the log, or (production_release) cuts
    the release due now from the demo feed and waits for QA; no task fails or retries."""
    dag_ids = sorted(d["dag_id"] for d in api.get("/dags", params={"limit": 100}).json()["dags"])
    assert "production_release" in dag_ids and any(d.startswith("oem_delivery__") for d in dag_ids)
    runs = {}
    for dag_id in dag_ids:
        api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        runs[dag_id] = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None}).json()["dag_run_id"]

    def outcome(dag_id: str) -> str | None:
        run = api.get(f"/dags/{dag_id}/dagRuns/{runs[dag_id]}").json()
        tasks = {
            t["task_id"]: t["state"]
            for t in api.get(f"/dags/{dag_id}/dagRuns/{runs[dag_id]}/taskInstances").json()["task_instances"]
        }
        if failed := {task: state for task, state in tasks.items() if state in FAILED}:
            return f"failed: {failed}"
        if run["state"] in ("success", "failed"):
            return run["state"]
        waits = WAITS_THERE.get(dag_id)
        return f"waits at {waits}" if waits and tasks.get(waits) in ("deferred", "running", "awaiting_input") else None

    outcomes = {}
    for dag_id in dag_ids:
        outcomes[dag_id] = wait_until(lambda d=dag_id: outcome(d), 240, f"the first run of {dag_id} to settle")
    expected = {d: f"waits at {WAITS_THERE[d]}" if d in WAITS_THERE else "success" for d in dag_ids}
    assert outcomes == expected, stack.output()


def test_a_hard_killed_make_up_leaves_nothing_behind_for_the_next_one(tmp_path):
    stack = Devstack(tmp_path / "home")
    stack.start()
    try:
        stack.wait_until_up()
        descendants = psutil.Process(stack.process.pid).children(recursive=True)
        recorded = json.loads((stack.home / "up.json").read_text())
        assert recorded["owner"]["pid"] == stack.process.pid
        assert {p["name"] for p in recorded["processes"]} == {
            "simulator",
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
        }
    except BaseException:
        stack.interrupt()
        raise
    # SIGKILL to `make up` alone, as when its terminal goes away: its parts keep running
    stack.process.kill()
    stack.process.wait(10)
    orphans = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert {p.pid for p in orphans} >= {p["pid"] for p in recorded["processes"]}
    assert httpx.get(f"http://localhost:{stack.port}/api/v2/monitor/health").status_code == 200

    # the next start stops exactly those, then serves on the same port itself
    stack.start()
    try:
        stack.wait_until_up()
        output = stack.output()
        assert "stopped what an earlier make up left running when it was killed" in output
        assert (
            f"api-server (pid {next(p['pid'] for p in recorded['processes'] if p['name'] == 'api-server')})" in output
        )
        left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert left == [], f"still running from the killed make up: {[p.cmdline() for p in left]}"
        assert json.loads((stack.home / "up.json").read_text())["owner"]["pid"] == stack.process.pid
        assert stack.api().get("/monitor/health").status_code == 200
    finally:
        assert stack.interrupt() == 0, stack.output()
    assert not (stack.home / "up.json").exists()


def test_make_up_refuses_ports_that_another_server_holds(tmp_path):
    with socket.socket() as web, socket.socket() as ssh:
        for listener in (web, ssh):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        web_port, ssh_port = web.getsockname()[1], ssh.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELEASE_TRAIN_DB", "SIM_"))}
        env.update(AIRFLOW_PORT=str(web_port), SIM_SSH_PORT=str(ssh_port), SIM_HTTP_PORT="0")
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "--home", str(tmp_path / "home")],
            cwd=REPO,
            env=this_checkout(env),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith(f"[up] port {web_port} (AIRFLOW_PORT) is taken by pid {os.getpid()} (")
        and line.endswith(f"choose another port: AIRFLOW_PORT={web_port + 1} make up")
        for line in lines
    ), result.stdout
    assert any(f"port {ssh_port} (SIM_SSH_PORT) is taken by pid {os.getpid()}" in line for line in lines)
    assert "refusing to start" in result.stdout
    assert not (tmp_path / "home" / "up.json").exists()
    assert not (tmp_path / "home" / "logs").exists()  # nothing was started
