"""Sign-off latency: from an OEM's sign-off being complete to its install command
reaching the instance.

A real Airflow on PostgreSQL (metadata and release database, LocalExecutor,
scheduler, triggerer; ``_support.postgres_stack``) runs the real
``dags/oem_delivery.py`` for K generated OEMs whose maintenance windows are always
open. Every run waits at its approval gate (the ``install`` task, deferred to the
triggerer's shared gate poller); then, one OEM at a time, its approvals are written
to the release database, and the time until the install command reaches the
simulated instance over SSH is read from the simulator's own record of commands.

The floor, measured on the same stack in the same run, interleaved with the OEMs:
a task deferred to a trigger that sees its moment within 50 ms, from that moment to
the task running again in a worker. That is the scheduling cost of a deferred task
resuming, which any gate that waits without holding a worker slot pays once.
Printed: each measurement, then minimum, median and maximum of both, the ratio of
the medians, and the machine.

    .venv/bin/python bench/signoff_latency.py [--oems 5] [--poll 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import pendulum
from _machine import machine_line
from _support import REPO, postgres_stack

from devstack.fleet import approve_all, fleet_oem_ids, seed_deployed_release
from devstack.stack import Stack, wait_until

BASELINE, TARGET = "2026.20", "2026.22"  # TARGET's install date has passed
FLOOR_DAG_ID = "bench_resume_floor"
FLOOR_SOURCE = '''"""Floor: a task deferred until a moment, resumed in a worker once the moment passed."""
import json
from pathlib import Path

import pendulum
from airflow.sdk import BaseOperator, Param, dag

from release_train_airflow.triggers import MomentTrigger


class ResumeAtMoment(BaseOperator):
    def execute(self, context):
        moment = pendulum.now("UTC").add(seconds=context["params"]["lead_seconds"]).isoformat()
        trigger = MomentTrigger(moment=moment, poll_interval=0.05)
        self.defer(trigger=trigger, method_name="resumed", kwargs={"moment": moment})

    def resumed(self, context, event, moment):
        resumed_at = pendulum.now("UTC").isoformat()
        Path(context["params"]["out"]).write_text(json.dumps({"moment": moment, "resumed_at": resumed_at}))


@dag(
    dag_id="bench_resume_floor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    tags=["bench"],
    params={"out": Param("", type="string"), "lead_seconds": Param(6, type="number")},
)
def bench_resume_floor():
    ResumeAtMoment(task_id="resume")


bench_resume_floor()
'''


def floor_once(stack: Stack, out: Path) -> float:
    """Seconds from a deferred task's moment to the task running again."""
    run_id = stack.trigger(FLOOR_DAG_ID, {"out": str(out), "lead_seconds": 6})
    assert stack.wait_for_run(FLOOR_DAG_ID, run_id, 120) == "success", stack.task_states(FLOOR_DAG_ID, run_id)
    seen = json.loads(out.read_text())
    return (pendulum.parse(seen["resumed_at"]) - pendulum.parse(seen["moment"])).total_seconds()


def install_command_at(stack: Stack, oem_id: str) -> pendulum.DateTime | None:
    history = stack.sim.state()["oems"][oem_id]["history"]
    return next((pendulum.parse(h["at"]) for h in history if h["action"] == "install" and h["release"] == TARGET), None)


def gate_waiting(stack: Stack, oem_id: str, run_id: str) -> bool:
    ti = stack.task_instance(f"oem_delivery__{oem_id}", run_id, "install")
    return ti["state"] == "deferred" and (ti.get("trigger") or {}).get("classpath", "").endswith("ApprovalGateTrigger")


def summary(label: str, values: list[float]) -> str:
    return f"  {label:28} min {min(values):5.2f}s  median {statistics.median(values):5.2f}s  max {max(values):5.2f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oems", type=int, default=5, help="OEM deliveries measured, one after the other")
    parser.add_argument("--poll", type=float, default=30.0, help="the approval gate's poll interval (seconds)")
    args = parser.parse_args()
    oem_ids = fleet_oem_ids(args.oems)
    print(machine_line())
    print(
        f"sign-off latency on PostgreSQL (NOTIFY), {args.oems} OEMs, approval gate polling every {args.poll:g} s",
        flush=True,
    )
    dag_files = {"oem_delivery.py": (REPO / "dags" / "oem_delivery.py").read_text(), f"{FLOOR_DAG_ID}.py": FLOOR_SOURCE}
    with (
        tempfile.TemporaryDirectory(prefix="bench-signoff-") as tmp,
        postgres_stack(dag_files, fleet=args.oems, baseline_release=BASELINE) as (stack, _),
    ):
        repo = stack.repository()
        change_ids = seed_deployed_release(repo, TARGET, oem_ids)
        stack.wait_for_dag(FLOOR_DAG_ID)
        runs = {}
        for oem_id in oem_ids:
            stack.wait_for_dag(f"oem_delivery__{oem_id}")
            runs[oem_id] = stack.trigger(
                f"oem_delivery__{oem_id}",
                {
                    "target_release": TARGET,
                    "gate_poll_seconds": args.poll,
                    "approval_deadline": pendulum.now("UTC").add(hours=1).isoformat(),
                },
            )
        for oem_id, run_id in runs.items():
            wait_until(lambda o=oem_id, r=run_id: gate_waiting(stack, o, r), 600, f"{oem_id}'s approval gate to wait")
        print(f"all {args.oems} gates waiting, deferred; one OEM at a time, each after one floor measurement\n")
        print(f"  {'OEM':10} {'floor: resume':>14} {'sign-off -> install command':>28}", flush=True)
        floors, latencies = [], []
        for n, (oem_id, run_id) in enumerate(runs.items()):
            floors.append(floor_once(stack, Path(tmp) / f"floor-{n}.json"))
            approve_all(repo, oem_id, change_ids, actor="bench")
            signed = pendulum.now("UTC")
            command_at = wait_until(lambda o=oem_id: install_command_at(stack, o), 300, f"{oem_id}'s install command")
            latencies.append((command_at - signed).total_seconds())
            print(f"  {oem_id:10} {floors[-1]:>13.2f}s {latencies[-1]:>27.2f}s", flush=True)
            dag_id = f"oem_delivery__{oem_id}"
            assert stack.wait_for_run(dag_id, run_id) == "success", stack.task_states(dag_id, run_id)
        repo.engine.dispose()
    print()
    print(summary("floor: a deferred task resumes", floors))
    print(summary("sign-off -> install command", latencies))
    print(f"  ratio of the medians: {statistics.median(latencies) / statistics.median(floors):.2f}x the floor")


if __name__ == "__main__":
    main()
