"""1,000 OEM approval gates waiting at once in one triggerer.

A real Airflow (scheduler, LocalExecutor, one triggerer, PostgreSQL for the metadata
and the release database) runs one DAG that maps the release train's own
ApprovalGateOperator over N generated OEMs, each with a pending sign-off of a release
of C changes. Once every gate is deferred, it prints: the task instances holding a
worker slot (running or queued) and the default pool's slots, the triggerer's CPU
(share of one core) and resident memory over a window, and the release-database
transactions per minute (PostgreSQL's own count) against the polls expected.

The floor, measured first in the same run: N asyncio tasks in one process, each
running the gate's query through the same async reader at the same poll interval,
without Airflow. The triggerer's figures are also given as a ratio to it.

    .venv/bin/python bench/approval_gates.py [--gates 1000] [--poll 30] [--window 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from _support import measure_tree, postgres_stack, transactions

from devstack.fleet import fleet_oem_ids, seed_deployed_release
from devstack.stack import Stack

BASELINE, TARGET = "2026.20", "2026.22"
DAG_ID = "bench_approval_gates"
DEADLINE = "2099-01-01T00:00:00+00:00"  # the gates wait as long as the benchmark needs
DAG_SOURCE = '''"""Benchmark: {count} approval gates of the release train waiting at once."""
import pendulum
from airflow.sdk import dag

from release_train_airflow.operators import ApprovalGateOperator


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench"],
    doc_md=__doc__,
)
def bench_approval_gates():
    ApprovalGateOperator.partial(
        task_id="approval_gate",
        after_release_id={after!r},
        until_release_id={until!r},
        poll_interval={poll!r},
        settle_at={deadline!r},
        deadline={deadline!r},
    ).expand(oem_id={oem_ids!r})


bench_approval_gates()
'''


# -- the floor: the same polling without Airflow ----------------------------------------------
async def poll_like_the_gates(url: str, oem_ids: list[str], poll: float, seconds: float) -> None:
    from release_pipeline.db import connect_async
    from release_pipeline.db.repository import AsyncReleaseReader

    # the engine the triggers use (release_train_airflow.triggers.release_db_reader)
    reader = AsyncReleaseReader(connect_async(url, pool_size=5, max_overflow=5, pool_pre_ping=True))
    stop = time.monotonic() + seconds

    async def gate(n: int, oem_id: str) -> None:
        await asyncio.sleep(poll * n / len(oem_ids))  # triggers start spread out, too
        while time.monotonic() < stop:
            await reader.approval_states(oem_id, BASELINE, TARGET)
            await asyncio.sleep(poll)

    await asyncio.gather(*(gate(n, oem_id) for n, oem_id in enumerate(oem_ids)))
    await reader.engine.dispose()


def floor(url: str, count: int, poll: float, window: float) -> dict:
    """Run the floor in a process of its own and measure it after one poll of warm-up."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--floor", url, str(count), str(poll), str(poll + window + 5)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(poll)
    before = transactions(url)
    usage = measure_tree(process.pid, window)
    per_minute = (transactions(url) - before) * 60 / window
    process.wait()
    return {"cpu": usage.cpu_share, "rss_mb": usage.rss_mb, "xact_per_min": per_minute}


# -- the real thing ---------------------------------------------------------------------------
def count_states(stack: Stack, run_id: str) -> dict[str, int]:
    with stack.api.client() as http:
        listing = http.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1}).json()
        total = listing["total_entries"]
        states = {}
        for state in ("deferred", "running", "queued", "scheduled", "success", "failed", "up_for_retry"):
            states[state] = http.get(
                f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"state": state, "limit": 1}
            ).json()["total_entries"]
    return {"total": total, **states}


def default_pool(stack: Stack) -> dict:
    with stack.api.client() as http:
        return http.get("/pools/default_pool").json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10, help="changes in the release each gate waits on")
    parser.add_argument("--poll", type=float, default=30.0, help="seconds between a gate's queries")
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured once all wait")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor worker slots")
    parser.add_argument("--floor", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        url, count, poll, seconds = args.floor
        asyncio.run(poll_like_the_gates(url, fleet_oem_ids(int(count)), float(poll), float(seconds)))
        return

    n = args.gates
    oem_ids = fleet_oem_ids(n)
    print(f"{n} approval gates, {args.changes} changes each, poll every {args.poll:g} s, window {args.window:g} s")
    source = DAG_SOURCE.format(
        count=n, dag_id=DAG_ID, after=BASELINE, until=TARGET, poll=args.poll, deadline=DEADLINE, oem_ids=oem_ids
    )
    with postgres_stack(
        DAG_ID,
        source,
        baseline_release=BASELINE,
        parallelism=args.parallelism,
        extra_env={
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, n)),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n)),
        },
    ) as (stack, release_db):
        repo = stack.repository()
        seed_deployed_release(repo, TARGET, oem_ids, changes=args.changes)
        repo.engine.dispose()
        triggerer = next(c for c in stack.supervisor.children if c.name == "triggerer").process.pid

        print("floor: the same queries from plain asyncio ...", flush=True)
        base = floor(release_db, n, args.poll, args.window)
        idle = measure_tree(triggerer, 20)

        stack.wait_for_dag(DAG_ID)
        started = time.monotonic()
        run_id = stack.trigger(DAG_ID)
        most_holding, last_print = 0, 0.0
        while True:
            states = count_states(stack, run_id)
            most_holding = max(most_holding, states["running"] + states["queued"])
            if states["failed"]:
                raise SystemExit(f"gates failed: {states}")
            if states["total"] == n and states["deferred"] == n:
                break
            if time.monotonic() - last_print > 30:
                print(f"  {time.monotonic() - started:5.0f}s  {json.dumps(states)}", flush=True)
                last_print = time.monotonic()
            time.sleep(2)
        ramp = time.monotonic() - started
        print(f"all {n} deferred after {ramp:.0f} s; measuring ...", flush=True)

        time.sleep(args.poll)  # every trigger has polled at least once
        before = transactions(release_db)
        usage = measure_tree(triggerer, args.window)
        per_minute = (transactions(release_db) - before) * 60 / args.window
        after = count_states(stack, run_id)
        pool = default_pool(stack)

    expected = n * 60 / args.poll
    holding = after["running"] + after["queued"]
    print(
        f"""
  gates deferred                       {after["deferred"]} of {n} (ramp-up {ramp:.0f} s, at most
                                       {most_holding} task instances in a worker slot meanwhile)
  holding a worker slot while waiting  {holding} task instances running or queued
  default pool while waiting           {pool["running_slots"]} running, {pool["queued_slots"]} queued, \
{pool["deferred_slots"]} deferred (deferred take no slot)
  triggerer CPU                        {usage.cpu_share:.1%} of a core ({idle.cpu_share:.1%} idle before)
  triggerer memory (RSS, {usage.processes} processes)   {usage.rss_mb:.0f} MB ({idle.rss_mb:.0f} MB idle before)
  release-DB transactions / min        {per_minute:.0f} (polls expected: {expected:.0f})
  floor (plain asyncio, same queries)  CPU {base["cpu"]:.1%} of a core, RSS {base["rss_mb"]:.0f} MB, \
{base["xact_per_min"]:.0f} transactions / min
  triggerer vs floor                   CPU x{usage.cpu_share / max(base["cpu"], 1e-9):.1f}, \
added CPU over idle x{(usage.cpu_share - idle.cpu_share) / max(base["cpu"], 1e-9):.1f}"""
    )
    if holding:
        raise SystemExit(f"{holding} waiting gates hold a worker slot: they should all be deferred")


if __name__ == "__main__":
    main()
