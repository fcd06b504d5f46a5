"""Delivery fan-out: N installs over SSH to the simulator with the oem_installs pool at
1, 8 and 32 slots.

A real Airflow (scheduler, LocalExecutor with 32 worker slots, PostgreSQL for the
metadata and the release database) runs a DAG that plans every OEM's delivery and
then maps the release train's own install step (``delivery.install`` in a task: the
OEM's command template over SSH, recorded once) over N generated OEMs, in the
`oem_installs` pool. The simulated instances take D seconds per install. One round per pool size,
each installing the next release. Printed per round: wall time from the first
install starting to the last one ending, installs per minute, and the most installs
seen running at once (from Airflow's task timestamps), which the pool bounds.

The floor, in the same run before each round: the same install commands straight over
asyncssh from bare asyncio, as many at a time as the pool has slots (each reinstalls
the version its instance runs, so the round still has everything to do). Printed: the
machine, each round's wall time against its floor, and the ratio.

    .venv/bin/python bench/install_fanout.py [--installs 32] [--install-seconds 2] [--pools 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncssh
import pendulum
from _machine import machine_line
from _support import postgres_stack

from devstack.fleet import approve_all, fleet_oem_ids, seed_deployed_release
from devstack.stack import INSTALL_POOL, Stack

BASELINE = "2026.20"
ROUND_RELEASES = ["2026.21", "2026.22", "2026.23", "2026.24"]  # one release per round, each newer
DAG_ID = "bench_install_fanout"
DAG_SOURCE = '''"""Benchmark: the install step of {count} OEM deliveries, fanned out in the oem_installs pool."""
import pendulum
from airflow.sdk import Param, dag, task

from release_train_airflow import delivery

OEM_IDS = {oem_ids!r}


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks={count},
    tags=["bench"],
    doc_md=__doc__,
    params={{"target_release": Param(None, type=["null", "string"])}},
)
def bench_install_fanout():
    @task
    def plans(params=None, run_id=None) -> list[dict]:
        return [delivery.plan(oem_id, dict(params), run_id, preview=False) for oem_id in OEM_IDS]

    @task
    def install(plan: dict) -> str:
        return delivery.install(plan)

    install.override(pool="{pool}").expand(plan=plans())


bench_install_fanout()
'''


def most_at_once(intervals: list[tuple[pendulum.DateTime, pendulum.DateTime]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def run_round(stack: Stack, pool_slots: int, release_id: str, count: int) -> dict:
    stack.set_install_pool(pool_slots)
    run_id = stack.trigger(DAG_ID, {"target_release": release_id})
    state = stack.wait_for_run(DAG_ID, run_id, timeout=1800)
    with stack.api.client() as http:
        listing = http.get(
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"task_id": "install", "limit": 1000}
        ).json()["task_instances"]
    installs = [ti for ti in listing if ti["task_id"] == "install"]
    if state != "success" or len(installs) != count:
        raise SystemExit(f"round with pool {pool_slots} ended {state}: {stack.task_states(DAG_ID, run_id)}")
    intervals = [(pendulum.parse(ti["start_date"]), pendulum.parse(ti["end_date"])) for ti in installs]
    wall = (max(end for _, end in intervals) - min(start for start, _ in intervals)).total_seconds()
    return {"pool": pool_slots, "wall": wall, "per_min": count * 60 / wall, "at_once": most_at_once(intervals)}


async def bare_installs(stack: Stack, oem_ids: list[str], release_id: str, slots: int) -> float:
    """Seconds for the install commands of ``oem_ids`` over asyncssh, ``slots`` at a time."""
    sim = stack.simulator.endpoints
    key = asyncssh.read_private_key(sim.ssh_client_key_file)
    at_once = asyncio.Semaphore(slots)

    async def install(oem_id: str) -> None:
        async with (
            at_once,
            asyncssh.connect(
                sim.ssh_host, port=sim.ssh_port, username=oem_id, client_keys=[key], known_hosts=None
            ) as conn,
        ):
            await conn.run(f"ava-ctl install {release_id}", check=True)

    started = time.monotonic()
    await asyncio.gather(*(install(oem_id) for oem_id in oem_ids))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installs", type=int, default=32, help="OEM instances installed per round")
    parser.add_argument("--install-seconds", type=float, default=2.0, help="how long a simulated install takes")
    parser.add_argument("--pools", type=int, nargs="+", default=[1, 8, 32], help="oem_installs slots per round")
    args = parser.parse_args()
    if len(args.pools) > len(ROUND_RELEASES):
        parser.error(f"at most {len(ROUND_RELEASES)} rounds")
    n, oem_ids = args.installs, fleet_oem_ids(args.installs)
    print(machine_line())
    print(f"{n} installs over SSH per round, {args.install_seconds:g} s each on the instance")
    source = DAG_SOURCE.format(count=n, dag_id=DAG_ID, oem_ids=oem_ids, pool=INSTALL_POOL)
    with postgres_stack({f"{DAG_ID}.py": source}, fleet=n, baseline_release=BASELINE, parallelism=32) as (stack, _):
        repo = stack.repository()
        for release_id in ROUND_RELEASES[: len(args.pools)]:
            changes = seed_deployed_release(repo, release_id, oem_ids)
            for oem_id in oem_ids:  # install reads the sign-off once more before its SSH command
                approve_all(repo, oem_id, changes)
        repo.engine.dispose()
        for oem_id in oem_ids:
            stack.sim.oem(oem_id, install_seconds=args.install_seconds)
        stack.wait_for_dag(DAG_ID)
        print(
            f"\n  {'pool slots':>10} {'floor':>8} {'wall time':>10} {'ratio':>7} {'installs/min':>13} "
            f"{'most at once':>13}",
            flush=True,
        )
        running = BASELINE
        for pool_slots, release_id in zip(args.pools, ROUND_RELEASES, strict=False):
            floor = asyncio.run(bare_installs(stack, oem_ids, running, pool_slots))
            result = run_round(stack, pool_slots, release_id, n)
            running = release_id
            print(
                f"  {result['pool']:>10} {floor:>7.1f}s {result['wall']:>9.1f}s {result['wall'] / floor:>6.2f}x "
                f"{result['per_min']:>13.1f} {result['at_once']:>13}",
                flush=True,
            )
        versions = {o["version"] for oem_id, o in stack.sim.state()["oems"].items() if oem_id in oem_ids}
        print(f"\n  every instance ends on {sorted(versions)}")


if __name__ == "__main__":
    main()
