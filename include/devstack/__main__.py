"""``make up``: the whole release train on one machine.

Prepares ``.airflow/`` (Airflow home, SQLite metadata and release databases),
starts the platform simulator and Airflow (api-server with the UI, scheduler,
dag-processor, triggerer), and stops all of it on Ctrl-C. Safe to run again.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pendulum

from devstack.airflow_env import LOCAL_USERS, REPO, airflow_environment
from devstack.supervisor import Supervisor, tail
from release_pipeline.config_loading import InvalidConfig
from release_pipeline.db import connect
from release_pipeline.db.migrate import upgrade
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar
from simulator.connections import as_environment, release_db_connection, simulator_connections
from simulator.process import SimulatorProcess

HOME = REPO / ".airflow"
INSTALL_POOL = ("oem_installs", "8", "Concurrent OEM installs across all OEMs")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("AIRFLOW_PORT", 8080)))
    parser.add_argument("--sim-http-port", type=int, default=int(os.environ.get("SIM_HTTP_PORT", 8090)))
    parser.add_argument("--sim-ssh-port", type=int, default=int(os.environ.get("SIM_SSH_PORT", 2222)))
    parser.add_argument("--home", type=Path, default=HOME)
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for the API server")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[up] {message}", flush=True)


def _already_running(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def seed_release_db(url: str, baseline_version: str) -> None:
    """Migrate the release DB and record what the simulated instances run at start."""
    engine = connect(url)
    upgrade(engine)
    repo = ReleaseRepository(engine)
    calendar = load_calendar()
    baseline = calendar.release_by_id(baseline_version)
    repo.record_baseline_release(baseline, actor="make up", reason="demo OEM instances start on it")
    for oem in load_registry().oems.values():
        if repo.installed_version(oem.id) is None:
            repo.set_installed_version(oem.id, baseline.id, at=baseline.at)
    engine.dispose()


def main(argv=None) -> int:
    args = parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    pid_file = home / "up.pid"
    if pid := _already_running(pid_file):
        say(f"already running as pid {pid}; stop it with Ctrl-C in its terminal (or `kill {pid}`)")
        return 1
    pid_file.write_text(str(os.getpid()))

    try:
        registry = load_registry()
        load_calendar()
    except InvalidConfig as exc:
        say(f"the config cannot be used:\n{exc}")
        return 2
    for error in registry.errors:
        say(f"config error (this OEM is left out): {error}")

    release_db_url = os.environ.get("RELEASE_TRAIN_DB_URL") or f"sqlite:///{home / 'release.db'}"
    calendar = load_calendar()
    baseline = calendar.delivery_cycle(calendar.delivery_cycle_at(pendulum.now()).index - 1).release.id
    say(f"release database {release_db_url} (OEM instances start on {baseline})")
    seed_release_db(release_db_url, baseline)

    simulator = SimulatorProcess(
        home / "simulator",
        http_port=args.sim_http_port,
        ssh_port=args.sim_ssh_port,
        initial_version=baseline,
        demo=True,
    )
    supervisor: Supervisor | None = None
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        endpoints = simulator.start()
        say(f"simulator: HTTP {endpoints.http_url}, SSH {endpoints.ssh_host}:{endpoints.ssh_port}")
        connections = simulator_connections(endpoints, registry.oems.values())
        connections["release_db"] = release_db_connection(release_db_url)
        env = {
            **os.environ,
            **airflow_environment(home, api_port=args.api_port),
            **as_environment(connections),
            "RELEASE_TRAIN_DB_URL": release_db_url,
        }
        write_env_file(home / "env.sh", env)

        say("migrating the Airflow metadata database")
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([airflow, "pools", "set", *INSTALL_POOL], env=env, check=True, stdout=subprocess.DEVNULL)

        supervisor = Supervisor(env=env, log_dir=home / "logs" / "components")
        supervisor.start("api-server", [airflow, "api-server", "--port", str(args.api_port)])
        for part in ("scheduler", "dag-processor", "triggerer"):
            supervisor.start(part, [airflow, part])
        wait_for_api(args.api_port, supervisor, args.timeout, lambda: stopping)
        if not stopping:
            banner(args.api_port, home, endpoints.http_url)
        while not stopping:
            if child := supervisor.exited():
                say(f"{child.name} exited with {child.process.returncode}; last lines of {child.log}:")
                print(tail(child.log), flush=True)
                return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # report and still stop everything below
        say(f"failed: {exc}")
        return 1
    finally:
        say("stopping everything that was started ...")
        if supervisor:
            supervisor.stop()
        simulator.stop()
        pid_file.unlink(missing_ok=True)
        say("stopped")


def wait_for_api(port: int, supervisor: Supervisor, timeout: float, stopping) -> None:
    url = f"http://localhost:{port}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    say(f"waiting for the Airflow API server on :{port} (a first start takes a minute)")
    while not stopping():
        if child := supervisor.exited():
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{tail(child.log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer from {url} after {timeout:.0f}s; logs in {supervisor.log_dir}")
        time.sleep(1)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """``source .airflow/env.sh`` gives a shell the same Airflow and connections."""
    keys = sorted(k for k in env if k.startswith(("AIRFLOW", "RELEASE_TRAIN")) or k in ("PATH", "PYTHONPATH"))
    path.write_text("".join(f"export {k}={shlex.quote(env[k])}\n" for k in keys))
    path.chmod(0o600)


def banner(port: int, home: Path, simulator_url: str) -> None:
    user, password = next(iter(LOCAL_USERS.items()))
    print(
        f"""
  Release train is up.
    Airflow UI      http://localhost:{port}   (login {user} / {password})
    Simulator       {simulator_url}/docs   (the vendor platform and OEM instances)
    Logs            {home}/logs/components/
    Airflow CLI     source {home}/env.sh && airflow dags list
  New DAGs start paused: unpause them in the UI. Ctrl-C stops everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
