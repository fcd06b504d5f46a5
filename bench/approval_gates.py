"""Approval gates waiting at once: what they cost, as a ratio to a floor measured in the same run.

For each size of --gates (default 100, 1,000 and 5,000), on a PostgreSQL release
database of its own where every OEM has a pending sign-off of a release of C changes:

- floor: bare asyncio (asyncpg), one task per gate running the gate's indexed
  approvals query once per poll interval, as a gate that polls by itself would;
- gates: the release train's own ``ApprovalGateTrigger.run()``, N of them in one event
  loop as the triggerer runs them, sharing one ``gate_poller.GatePoller``.

Each is a process of its own, measured over a window after a poll of warm-up: CPU
(share of one core), resident memory and release-database transactions per minute
(PostgreSQL's own count). It prints the floor, the result, their ratio and the machine.

--airflow N runs the real thing instead, for N gates: a real Airflow (scheduler,
LocalExecutor, triggerer, PostgreSQL) maps ``ApprovalGateOperator`` over N OEMs and
measures the triggerer once every gate is deferred (each gate checks once in a worker
first: about 4 minutes of ramp-up per 1,000 gates on 2 cores). Its floor in the same
triggerer, measured first: N idle deferred tasks (Airflow's own ``DateTimeSensorAsync``
deferring to ``DateTimeTrigger`` until a far-off moment), what any deferred task costs
the triggerer's own bookkeeping. The gates then wait beside them, and what they add is
set against what the idle tasks added.

    .venv/bin/python bench/approval_gates.py [--gates 100 1000 5000] [--poll 30] [--window 60]
    .venv/bin/python bench/approval_gates.py --airflow 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from _support import PG_URL, measure_tree, postgres_stack, transactions

from devstack.fleet import fleet_oem_ids, seed_deployed_release
from devstack.postgres import ThrowawayDatabases
from devstack.stack import Stack

BASELINE, TARGET = "2026.20", "2026.22"
DAG_ID = "bench_approval_gates"
DEADLINE = "2099-01-01T00:00:00+00:00"  # the gates wait as long as the benchmark needs
# both benchmark DAGs: run only when triggered, nothing else of the house defaults
BENCH_DAG = """@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench"],
    doc_md=__doc__,
)
"""
DAG_SOURCE = (
    '''"""Benchmark: {count} approval gates of the release train waiting at once."""
import pendulum
from airflow.sdk import dag

from release_train_airflow.operators import ApprovalGateOperator

DEADLINE = {deadline!r}


'''
    + BENCH_DAG
    + """def bench_approval_gates():
    ApprovalGateOperator.partial(task_id="approval_gate", poll_interval={poll!r}).expand(
        plan=[
            {{"oem_id": oem_id, "installed": {after!r}, "aim": {until!r}, "settle_at": DEADLINE, "deadline": DEADLINE}}
            for oem_id in {oem_ids!r}
        ]
    )


bench_approval_gates()
"""
)

IDLE_DAG_ID = "bench_idle_deferred"
IDLE_DAG_SOURCE = (
    '''"""Benchmark floor: {count} deferred tasks that wait idle, as any deferred task does."""
import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import dag


'''
    + BENCH_DAG
    + """def bench_idle_deferred():
    DateTimeSensorAsync.partial(task_id="idle").expand(target_time=[{deadline!r}] * {count})


bench_idle_deferred()
"""
)


def machine() -> str:
    """What the figures were measured on."""
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    system = f"{platform.system()} {platform.release()}"
    return f"{platform.node()}: {os.cpu_count()} x {model}, {system}, Python {platform.python_version()}"


# -- the floor: bare asyncio, one indexed query per gate per poll ------------------------------
async def poll_one_query_per_gate(url: str, oem_ids: list[str], poll: float, seconds: float) -> None:
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    from release_pipeline.db.signoff import approval_states_query

    # the gates' own query (every production change with the OEM's latest decision), as asyncpg SQL
    compiled = approval_states_query("OEM", BASELINE, TARGET).compile(dialect=dialect())
    names = compiled.positiontup
    sql = compiled.string

    async def no_reset(connection) -> None:  # asyncpg's default reset is one more statement per query
        pass

    pool = await asyncpg.create_pool(url, min_size=1, max_size=5, reset=no_reset)
    stop = time.monotonic() + seconds
    print("ready", flush=True)

    async def gate(n: int, oem_id: str) -> None:
        args = [oem_id if compiled.params[name] == "OEM" else compiled.params[name] for name in names]
        await asyncio.sleep(poll * n / len(oem_ids))  # gates start spread out
        while time.monotonic() < stop:
            async with pool.acquire() as conn:
                await conn.fetch(sql, *args)
            await asyncio.sleep(poll)

    await asyncio.gather(*(gate(n, oem_id) for n, oem_id in enumerate(oem_ids)))
    await pool.close()


# -- the result: the release train's gates, one event loop as in the triggerer -----------------
async def wait_like_the_triggerer(oem_ids: list[str], poll: float, seconds: float) -> None:
    from release_train_airflow.gate_poller import poller
    from release_train_airflow.triggers import ApprovalGateTrigger

    gates = [
        ApprovalGateTrigger(
            oem_id=oem_id,
            after_release_id=BASELINE,
            until_release_id=TARGET,
            poll_interval=poll,
            settle_at=DEADLINE,
            deadline=DEADLINE,
        )
        for oem_id in oem_ids
    ]
    waiting = [asyncio.ensure_future(anext(gate.run())) for gate in gates]
    while not ((shared := poller("release_db")) and len(shared.answers) == len(gates)):
        await asyncio.sleep(0.1)
    print("ready", flush=True)  # every gate has its first answer
    await asyncio.sleep(seconds)
    if fired := [w.result().payload for w in waiting if w.done()]:
        raise SystemExit(f"{len(fired)} gates stopped waiting: {fired[:3]}")
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def measured(kind: str, url: str, count: int, poll: float, window: float, env: dict | None = None) -> dict:
    """Run ``kind`` for ``count`` gates in a process of its own; measure it once it is
    ready (imports done, every gate waiting) and one poll interval has passed."""
    process = subprocess.Popen(
        [sys.executable, __file__, f"--{kind}", url, str(count), str(poll), str(poll + window + 600)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if process.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {kind} process ended before it was ready ({process.wait()})")
        time.sleep(poll)
        before = transactions(url)
        usage = measure_tree(process.pid, window)
        after = transactions(url)
        counting = transactions(url) - after  # what one look at the count costs itself
        per_minute = (after - before - counting) * 60 / window
    finally:
        process.terminate()
        process.wait()
    return {"cpu": usage.cpu_share, "rss_mb": usage.rss_mb, "xact_per_min": per_minute}


def in_process(args) -> None:
    """The child side of ``measured``."""
    kind = "floor" if args.floor else "gates"
    url, count, poll, seconds = args.floor or args.gates_child
    oem_ids, poll, seconds = fleet_oem_ids(int(count)), float(poll), float(seconds)
    if kind == "floor":
        asyncio.run(poll_one_query_per_gate(url, oem_ids, poll, seconds))
    else:
        asyncio.run(wait_like_the_triggerer(oem_ids, poll, seconds))


def compare(sizes: list[int], changes: int, poll: float, window: float) -> None:
    from release_pipeline.db import connect
    from release_pipeline.db.migrate import upgrade
    from release_pipeline.db.repository import ReleaseRepository

    print(f"approval gates, {changes} changes each, poll every {poll:g} s, window {window:g} s")
    print(f"machine: {machine()}")
    rows = []
    with ThrowawayDatabases(PG_URL) as databases, tempfile.TemporaryDirectory(prefix="bench-gates-") as home:
        for n in sizes:
            url = databases.create("bench_gates")
            engine = connect(url)
            upgrade(engine)
            engine.dispose()
            repo = ReleaseRepository.from_url(url)
            seed_deployed_release(repo, TARGET, fleet_oem_ids(n), changes=changes)
            repo.engine.dispose()
            connection = {"conn_type": "postgres", "host": "127.0.0.1", "login": "postgres"}
            from sqlalchemy.engine import make_url

            parsed = make_url(url)
            connection.update(host=parsed.host, port=parsed.port or 5432, login=parsed.username, schema=parsed.database)
            if parsed.password:
                connection["password"] = parsed.password
            env = {"AIRFLOW_HOME": home, "AIRFLOW_CONN_RELEASE_DB": json.dumps(connection)}
            print(f"  {n} gates: floor ...", flush=True)
            floor = measured("floor", url, n, poll, window)
            print(f"  {n} gates: the release train's gates ...", flush=True)
            gates = measured("gates-child", url, n, poll, window, env)
            rows.append((n, floor, gates))
    print("\n  gates   floor CPU  floor xact/min  floor RSS   gates CPU  gates xact/min  gates RSS   CPU ratio")
    for n, floor, gates in rows:
        print(
            f"  {n:5d}   {floor['cpu']:8.2%}  {floor['xact_per_min']:14.0f}  {floor['rss_mb']:6.0f} MB"
            f"   {gates['cpu']:8.2%}  {gates['xact_per_min']:14.0f}  {gates['rss_mb']:6.0f} MB"
            f"   x{gates['cpu'] / max(floor['cpu'], 1e-9):.2f}"
        )


# -- the real thing ---------------------------------------------------------------------------
def count_states(stack: Stack, dag_id: str, run_id: str) -> dict[str, int]:
    with stack.api.client() as http:
        listing = http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1}).json()
        total = listing["total_entries"]
        states = {}
        for state in ("deferred", "running", "queued", "scheduled", "success", "failed", "up_for_retry"):
            states[state] = http.get(
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"state": state, "limit": 1}
            ).json()["total_entries"]
    return {"total": total, **states}


def deferred_run(stack: Stack, dag_id: str, n: int) -> tuple[str, float, int]:
    """Trigger ``dag_id`` and wait until its ``n`` task instances are all deferred: the
    run's id, the ramp-up in seconds, and the most task instances in a worker slot meanwhile."""
    stack.wait_for_dag(dag_id)
    started = time.monotonic()
    run_id = stack.trigger(dag_id)
    most_holding, last_print = 0, 0.0
    while True:
        states = count_states(stack, dag_id, run_id)
        most_holding = max(most_holding, states["running"] + states["queued"])
        if states["failed"]:
            raise SystemExit(f"{dag_id}: tasks failed: {states}")
        if states["total"] == n and states["deferred"] == n:
            break
        if time.monotonic() - last_print > 30:
            print(f"  {time.monotonic() - started:5.0f}s  {dag_id}  {json.dumps(states)}", flush=True)
            last_print = time.monotonic()
        time.sleep(2)
    ramp = time.monotonic() - started
    print(f"all {n} of {dag_id} deferred after {ramp:.0f} s; measuring ...", flush=True)
    return run_id, ramp, most_holding


def default_pool(stack: Stack) -> dict:
    with stack.api.client() as http:
        return http.get("/pools/default_pool").json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, nargs="+", default=[100, 1000, 5000], help="sizes to compare")
    parser.add_argument("--airflow", type=int, metavar="N", help="N gates in a real Airflow triggerer instead")
    parser.add_argument("--changes", type=int, default=10, help="changes in the release each gate waits on")
    parser.add_argument("--poll", type=float, default=30.0, help="seconds between a gate's queries")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured once all wait")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor worker slots (--airflow)")
    parser.add_argument("--floor", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--gates-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor or args.gates_child:
        in_process(args)
    elif args.airflow:
        in_airflow(args)
    else:
        compare(args.gates, args.changes, args.poll, args.window)


def in_airflow(args) -> None:
    n = args.airflow
    print(f"machine: {machine()}")
    oem_ids = fleet_oem_ids(n)
    print(f"{n} approval gates, {args.changes} changes each, poll every {args.poll:g} s, window {args.window:g} s")
    source = DAG_SOURCE.format(
        count=n, dag_id=DAG_ID, after=BASELINE, until=TARGET, poll=args.poll, deadline=DEADLINE, oem_ids=oem_ids
    )
    idle_source = IDLE_DAG_SOURCE.format(count=n, dag_id=IDLE_DAG_ID, deadline=DEADLINE)
    with postgres_stack(
        {f"{DAG_ID}.py": source, f"{IDLE_DAG_ID}.py": idle_source},
        baseline_release=BASELINE,
        parallelism=args.parallelism,
        extra_env={  # the idle floor and the gates wait in one triggerer at the end
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, 2 * n)),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n)),
        },
    ) as (stack, release_db):
        repo = stack.repository()
        seed_deployed_release(repo, TARGET, oem_ids, changes=args.changes)
        repo.engine.dispose()
        triggerer = next(c for c in stack.supervisor.children if c.name == "triggerer").process.pid

        print("floor: one indexed query per gate per poll from bare asyncio ...", flush=True)
        base = measured("floor", release_db, n, args.poll, args.window)
        idle = measure_tree(triggerer, 20)

        print(f"floor: {n} idle deferred tasks in the triggerer ...", flush=True)
        _, idle_ramp, _ = deferred_run(stack, IDLE_DAG_ID, n)
        time.sleep(args.poll)
        with_idle = measure_tree(triggerer, args.window)

        run_id, ramp, most_holding = deferred_run(stack, DAG_ID, n)
        time.sleep(args.poll)  # every gate has polled at least once
        before = transactions(release_db)
        usage = measure_tree(triggerer, args.window)
        per_minute = (transactions(release_db) - before) * 60 / args.window
        after = count_states(stack, DAG_ID, run_id)
        pool = default_pool(stack)

    holding = after["running"] + after["queued"]
    idle_added = with_idle.cpu_share - idle.cpu_share
    gates_added = usage.cpu_share - with_idle.cpu_share
    print(
        f"""
  gates deferred                       {after["deferred"]} of {n} (ramp-up {ramp:.0f} s, at most
                                       {most_holding} task instances in a worker slot meanwhile)
  holding a worker slot while waiting  {holding} task instances running or queued
  default pool while waiting           {pool["running_slots"]} running, {pool["queued_slots"]} queued, \
{pool["deferred_slots"]} deferred (deferred take no slot)
  triggerer CPU, idle                  {idle.cpu_share:.1%} of a core, RSS {idle.rss_mb:.0f} MB
  floor: + {n} idle deferred tasks     {with_idle.cpu_share:.1%} of a core (+{idle_added:.1%}), \
RSS {with_idle.rss_mb:.0f} MB (ramp-up {idle_ramp:.0f} s)
  result: + {n} approval gates         {usage.cpu_share:.1%} of a core (+{gates_added:.1%}), \
RSS {usage.rss_mb:.0f} MB ({usage.processes} processes)
  gates added / idle tasks added       CPU x{gates_added / max(idle_added, 1e-9):.2f}
  release-DB transactions / min        {per_minute:.0f} (one poll for all gates: {60 / args.poll:.0f})
  floor (asyncpg, a query per gate)    CPU {base["cpu"]:.1%} of a core, RSS {base["rss_mb"]:.0f} MB, \
{base["xact_per_min"]:.0f} transactions / min
  gates added vs asyncpg floor         CPU x{gates_added / max(base["cpu"], 1e-9):.2f}"""
    )
    if holding:
        raise SystemExit(f"{holding} waiting gates hold a worker slot: they should all be deferred")


if __name__ == "__main__":
    main()
