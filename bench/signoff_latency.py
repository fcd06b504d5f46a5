"""Sign-off latency: from an OEM's approval row being written to its install starting.

`make up`'s shape (SQLite metadata and release databases, LocalExecutor, scheduler,
triggerer) with the real oem_delivery__<oem> DAGs of K generated OEMs whose
maintenance windows are always open. Every run waits at its approval gate,
deferred; then, one OEM at a time, the approvals are written to the release
database and the time until Airflow starts the `install` task is taken from
Airflow's own task timestamps. Printed: per OEM, until the gate finished (the
trigger's poll and the resume in a worker) and until install started (plus the
tasks between: act_on_sign_off, the maintenance-window wait, preflight), then the
minimum, median and maximum.

    .venv/bin/python bench/signoff_latency.py [--oems 5] [--poll 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pendulum
from _support import REPO  # noqa: F401  (puts include/ and plugins/ on sys.path)

from devstack.fleet import approve_all, fleet_oem_ids, seed_deployed_release, write_fleet_config
from devstack.stack import Stack, StackConfig, free_port, wait_until

BASELINE, TARGET = "2026.20", "2026.22"  # TARGET's install date has passed


def gate_of(stack: Stack, dag_id: str, run_id: str) -> dict:
    return stack.task_instance(dag_id, run_id, "approval_gate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oems", type=int, default=5, help="OEM deliveries measured, one after the other")
    parser.add_argument("--poll", type=float, default=5.0, help="the approval gate's poll interval (seconds)")
    args = parser.parse_args()
    oem_ids = fleet_oem_ids(args.oems)
    print(f"sign-off latency, {args.oems} OEMs, approval gate polling every {args.poll:g} s")
    with tempfile.TemporaryDirectory(prefix="bench-signoff-") as tmp:
        config = StackConfig(
            home=Path(tmp) / "stack",
            api_port=free_port(),
            config_dir=write_fleet_config(Path(tmp) / "config", args.oems),
            baseline_release=BASELINE,
            demo_changes=False,
            log_server_ports=None,
        )
        with Stack(config) as stack:
            repo = stack.repository()
            change_ids = seed_deployed_release(repo, TARGET, oem_ids)
            runs = {}
            for oem_id in oem_ids:
                dag_id = f"oem_delivery__{oem_id}"
                stack.wait_for_dag(dag_id)
                runs[oem_id] = stack.trigger(
                    dag_id,
                    {
                        "target_release": TARGET,
                        "gate_poll_seconds": args.poll,
                        "approval_deadline": pendulum.now("UTC").add(hours=1).isoformat(),
                    },
                )
            for oem_id, run_id in runs.items():
                wait_until(
                    lambda o=oem_id, r=run_id: gate_of(stack, f"oem_delivery__{o}", r)["state"] == "deferred",
                    600,
                    f"{oem_id}'s approval gate to defer",
                )
            print(f"all {args.oems} gates deferred; approving one OEM at a time\n")
            print(f"  {'OEM':10} {'gate done':>10} {'install started':>16}")
            to_gate, to_install = [], []
            for oem_id, run_id in runs.items():
                dag_id = f"oem_delivery__{oem_id}"
                written = pendulum.now("UTC")
                approve_all(repo, oem_id, change_ids, actor="bench")
                install = wait_until(
                    lambda d=dag_id, r=run_id: (ti := stack.task_instance(d, r, "install"))["start_date"] and ti,
                    300,
                    f"{oem_id}'s install to start",
                )
                gate_done = pendulum.parse(gate_of(stack, dag_id, run_id)["end_date"])
                to_gate.append((gate_done - written).total_seconds())
                to_install.append((pendulum.parse(install["start_date"]) - written).total_seconds())
                print(f"  {oem_id:10} {to_gate[-1]:>9.1f}s {to_install[-1]:>15.1f}s")
                assert stack.wait_for_run(dag_id, run_id) == "success", stack.task_states(dag_id, run_id)
                time.sleep(1)
            repo.engine.dispose()
    for label, values in (("gate done", to_gate), ("install started", to_install)):
        print(f"  {label:16} min {min(values):.1f}s  median {statistics.median(values):.1f}s  max {max(values):.1f}s")


if __name__ == "__main__":
    main()
