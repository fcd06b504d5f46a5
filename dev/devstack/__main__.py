"""``make up``: the whole release train on one machine.

Prepares ``.airflow/`` (Airflow home, SQLite metadata and release databases),
starts the platform simulator and Airflow (api-server with the UI, scheduler,
dag-processor, triggerer), and stops all of it on Ctrl-C. Safe to run again: what a
hard-killed earlier run left behind (recorded in ``.airflow/up.json``) is stopped first, and
ports held by anything else are refused.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from devstack.airflow_env import LOCAL_USERS, REPO
from devstack.demo_config import emailing_config, git_change_source
from devstack.leftovers import ProcessRecord, port_holder, stop_leftovers
from devstack.stack import Stack, StackConfig
from devstack.supervisor import tail
from release_pipeline.config_loading import InvalidConfig, config_dir
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("AIRFLOW_PORT", 8080)))
    parser.add_argument("--sim-http-port", type=int, default=int(os.environ.get("SIM_HTTP_PORT", 8090)))
    parser.add_argument("--sim-ssh-port", type=int, default=int(os.environ.get("SIM_SSH_PORT", 2222)))
    parser.add_argument("--home", type=Path, default=REPO / ".airflow")
    parser.add_argument(
        "--http-notify",
        action="store_true",
        help="run on config/ as it is (OEMs without an email block get the HTTP sink) instead of e-mailing every OEM",
    )
    parser.add_argument(
        "--http-feed",
        action="store_true",
        help="read changes from the simulator's HTTP change feed instead of the demo's git repository",
    )
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for the API server")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[up] {message}", flush=True)


PORT_SETTINGS = (("api_port", "AIRFLOW_PORT"), ("sim_http_port", "SIM_HTTP_PORT"), ("sim_ssh_port", "SIM_SSH_PORT"))


def taken_ports(args: argparse.Namespace) -> list[str]:
    """One line per port this stack needs that something else listens on."""
    problems = []
    for attribute, variable in PORT_SETTINGS:
        port = getattr(args, attribute)
        if port and (holder := port_holder(port)):
            problems.append(
                f"port {port} ({variable}) is taken by {holder}; stop that, or choose another port: "
                f"{variable}={port + 1} make up"
            )
    return problems


def main(argv=None) -> int:
    args = parse_args(argv)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    record = ProcessRecord(home / "up.json")
    if pid := record.owner_running():
        say(f"already running as pid {pid}; stop it with Ctrl-C in its terminal (or `kill {pid}`)")
        return 1
    # an earlier `make up` that was killed hard (SIGKILL, a closed terminal) left its parts running
    if stopped := stop_leftovers(record):
        names = ", ".join(f"{entry.name} (pid {entry.pid})" for entry in stopped)
        say(f"stopped what an earlier make up left running when it was killed: {names}")
    if problems := taken_ports(args):
        for problem in problems:
            say(problem)
        say("refusing to start: another server on these ports would answer instead of this stack")
        return 1
    record.claim()

    try:
        registry = load_registry()
        load_calendar()
    except InvalidConfig as exc:
        say(f"the config cannot be used:\n{exc}")
        record.clear()
        return 2
    for error in registry.errors:
        say(f"config error (this OEM is left out): {error}")

    demo_config = None if args.http_notify else emailing_config(config_dir(), home / "config")
    history = None
    if demo_config is not None and not args.http_feed:
        history = git_change_source(demo_config, home / "demo-platform")
        say(f"the demo's change source is the git repository {history} (see `git -C {history} log`)")
    stack = Stack(
        StackConfig(
            home=home,
            api_port=args.api_port,
            sim_http_port=args.sim_http_port,
            sim_ssh_port=args.sim_ssh_port,
            release_db_url=os.environ.get("RELEASE_TRAIN_DB_URL"),
            config_dir=demo_config,
        ),
        record=record,
    )
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        say(f"starting: release database {stack.release_db_url}, simulator, Airflow (a first start takes a minute)")
        stack.start(timeout=args.timeout, stopping=lambda: stopping)
        write_env_file(home / "env.sh", stack.env)
        if not stopping:
            banner(args.api_port, home, stack, history)
        while not stopping:
            if child := stack.supervisor.exited():
                say(f"{child.name} exited with {child.process.returncode}; last lines of {child.log}:")
                print(tail(child.log), flush=True)
                return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # report, and still stop everything below
        say(f"failed: {exc}")
        return 1
    finally:
        say("stopping everything that was started ...")
        stack.stop()
        record.clear()
        say("stopped")


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """``source .airflow/env.sh`` gives a shell the same Airflow and connections."""
    keys = sorted(k for k in env if k.startswith(("AIRFLOW", "RELEASE_TRAIN")) or k in ("PATH", "PYTHONPATH"))
    path.write_text("".join(f"export {k}={shlex.quote(env[k])}\n" for k in keys))
    path.chmod(0o600)


def banner(port: int, home: Path, stack: Stack, history: Path | None = None) -> None:
    user, password = next(iter(LOCAL_USERS.items()))
    changes = (
        f"git -C {history} log --first-parent" if history else "the simulator's HTTP change feed (GET /feed/changes)"
    )
    print(
        f"""
  Release train is up.
    Airflow UI      http://localhost:{port}   (login {user} / {password})
    OEM portal      http://localhost:{port}/oem-portal/   (tokens: release-train token issue --oem <id>)
    Simulator       {stack.simulator.endpoints.http_url}/docs   (the vendor platform and OEM instances)
    OEM mailboxes   {stack.simulator.endpoints.http_url}/mailbox   (what each OEM was e-mailed)
    OEM instances   start on release {stack.baseline}
    Changes         {changes}   (what the releases are cut from)
    Logs            {home}/logs/components/
    Airflow CLI     source {home}/env.sh && airflow dags list
  New DAGs start paused: unpause them in the UI. Ctrl-C stops everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
