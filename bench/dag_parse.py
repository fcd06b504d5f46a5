"""DAG-file parse time of dags/ for fleets of 10, 100 and 1,000 OEMs, against its floor.

Each file is processed as Airflow's DAG processor does it: a process with Airflow
imported (its objects frozen for the garbage collector) forks one child per file,
which pre-imports the Airflow modules the file names and runs the processor's own
``_parse_file`` (import the file into a DagBag, the part ``dagbag_import_timeout``
bounds, then serialize its DAGs). Printed per
file: the import (its share of the timeout) and the serialization, wall clock and
CPU time of the parsing process.

The floor, parsed in the same run the same way: a generated file of as many trivial
DAGs as there are OEMs, each a chain of ``EmptyOperator``s as long as an OEM delivery
DAG (its task count is read from the DAGs just parsed). For context, a second one
whose tasks are a no-op TaskFlow ``@task``, what the delivery DAG's tasks are. The
ratio is ``oem_delivery.py``'s import plus serialization over the trivial floor's,
in CPU time: on a shared machine wall time also counts the other processes.

    .venv/bin/python bench/dag_parse.py [--oems 10 100 1000] [--repeats 5] [--all-files]

Each fleet is parsed ``--repeats`` times, each time in a fresh process: the file, the
trivial floor, the delivery file again, the TaskFlow floor. The table shows medians.
The ratio is the median of the runs' own ratios, each the mean of the delivery file's
two parses over the trivial floor they bracket: this virtual machine's CPU speed
drifts between runs and within them (a fixed loop of pure Python was seen to take
0.41 s to 0.54 s), so parses measured together, around each other, are the fair
comparison. Each run's ratio and the fastest run of each over the other are printed too.
Only ``oem_delivery.py`` unless ``--all-files``. The import runs with the timeout
lifted (its share of the configured one is printed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
DELIVERY_FILE = "oem_delivery.py"
TIMEOUT_ENV = "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"
TIMEOUT_SHOWN_ENV = "BENCH_DAGBAG_IMPORT_TIMEOUT"

# The floors: {count} DAGs of {tasks} tasks each, scheduled like nothing, no params.
FLOOR_SOURCES = {
    "trivial": '''"""Floor: {count} DAGs, each a chain of {tasks} EmptyOperators."""
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain

for n in range({count}):
    with DAG(f"trivial_{{n:05d}}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        chain(*[EmptyOperator(task_id=f"task_{{i}}") for i in range({tasks})])
''',
    "taskflow": '''"""Floor for context: {count} DAGs, each a chain of {tasks} no-op TaskFlow tasks."""
import pendulum
from airflow.sdk import DAG, chain, task


@task
def noop():
    pass


for n in range({count}):
    with DAG(f"taskflow_{{n:05d}}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        chain(*[noop.override(task_id=f"task_{{i}}")() for i in range({tasks})])
''',
}


def parse_every_file(oem_count: int, floor_dir: Path, every_file: bool) -> dict:
    """In the child: with Airflow imported once, fork a process per DAG file and parse
    it there, as the DAG processor manager does; then the floors, with the delivery
    DAG's task count."""
    started = time.perf_counter()
    from airflow.dag_processing import processor  # noqa: F401  (imported before the forks, like the manager)

    # as the manager does before its parsing loop: no child's collector walks (and
    # copies, page by page) the objects every child shares
    gc.freeze()

    results = {
        "airflow_import_s": time.perf_counter() - started,
        "timeout_s": float(os.environ[TIMEOUT_SHOWN_ENV]),
        "files": {},
        "floors": {},
    }
    for path in sorted(DAGS.glob("*.py")) if every_file else [DAGS / DELIVERY_FILE]:
        results["files"][path.name] = parse_in_fork(path, DAGS)
    tasks = results["files"][DELIVERY_FILE]["tasks_per_dag"]
    for name, source in FLOOR_SOURCES.items():
        floor = floor_dir / f"{name}_fleet.py"
        floor.write_text(source.format(count=oem_count, tasks=tasks))
        results["floors"][name] = parse_in_fork(floor, floor_dir)
        if name == "trivial":  # the delivery file once more: its two parses bracket the floor's
            results["delivery_again"] = parse_in_fork(DAGS / DELIVERY_FILE, DAGS)
    return results


def parse_in_fork(path: Path, bundle: Path) -> dict:
    read_end, write_end = os.pipe()
    if (pid := os.fork()) == 0:
        os.close(read_end)
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(parse_one_file(path, bundle)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        result = json.loads(answer.read() or "null")
    os.waitpid(pid, 0)
    if result is None or "error" in result:
        raise SystemExit(f"{path.name}: {result}")
    return result


def parse_one_file(path: Path, bundle: Path) -> dict:
    """The two steps of the processor's ``_parse_file``, timed apart."""
    import structlog
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

    log = structlog.get_logger()
    begun, begun_cpu = time.perf_counter(), time.process_time()
    _pre_import_airflow_modules(str(path), log)
    bag = BundleDagBag(dag_folder=str(path), bundle_path=bundle, bundle_name="dags-folder", load_op_links=False)
    imported, imported_cpu = time.perf_counter(), time.process_time()
    serialized, errors = _serialize_dags(bag, log)
    finished, finished_cpu = time.perf_counter(), time.process_time()
    if bag.import_errors or errors:
        return {"error": {**bag.import_errors, **errors}}
    return {
        "import_s": imported - begun,
        "serialize_s": finished - imported,
        "import_cpu_s": imported_cpu - begun_cpu,
        "serialize_cpu_s": finished_cpu - imported_cpu,
        "dags": len(serialized),
        "tasks_per_dag": max((len(dag.tasks) for dag in bag.dags.values()), default=0),
    }


def measure(oem_count: int, repeats: int, workdir: Path, every_file: bool) -> list[dict]:
    # Only here, in the parent: the measuring child imports nothing but Airflow before
    # it forks, as the DAG processor manager does, so no DAG file finds our modules loaded.
    sys.path[:0] = [str(REPO / "include"), str(REPO / "dev")]
    from devstack.airflow_env import airflow_environment
    from devstack.fleet import write_fleet_config
    from release_pipeline.config_loading import CONFIG_DIR_ENV

    config = write_fleet_config(workdir / f"config-{oem_count}", oem_count)
    floor_dir = workdir / f"floor-{oem_count}"
    floor_dir.mkdir()
    env = {**os.environ, **airflow_environment(workdir / "airflow-home"), CONFIG_DIR_ENV: str(config)}
    # measured against the timeout configured, but not stopped by it: on a busy machine
    # an import past it is a figure to print, not a reason to print none
    env[TIMEOUT_SHOWN_ENV] = env.get(TIMEOUT_ENV, "30")
    env[TIMEOUT_ENV] = "3600"
    runs = []
    for _ in range(repeats):
        answer = subprocess.run(
            [sys.executable, __file__, "--child", str(oem_count), str(floor_dir), str(int(every_file))],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if answer.returncode != 0:
            raise SystemExit(f"parsing with {oem_count} OEMs failed:\n{answer.stderr[-3000:]}")
        runs.append(json.loads(answer.stdout.strip().splitlines()[-1]))
    return runs


def total(result: dict, kind: str = "_s") -> float:
    return result[f"import{kind}"] + result[f"serialize{kind}"]


def report(oem_count: int, runs: list[dict]) -> None:
    """Medians over the runs, per file and per floor; then the ratios."""
    timeout = runs[0]["timeout_s"]
    tasks = runs[0]["files"][DELIVERY_FILE]["tasks_per_dag"]

    def median(section: str, name: str, key: str) -> float:
        return statistics.median(r[section][name][key] for r in runs)

    print(
        f"\n{oem_count} OEMs, {tasks} tasks per delivery DAG, {len(runs)} run(s)"
        f" (import of Airflow itself: {min(r['airflow_import_s'] for r in runs):.2f} s)"
    )
    print(
        f"  {'file':30} {'DAGs':>5} {'import':>7} {'of timeout':>10} {'serialize':>9}"
        f" {'CPU: import':>11} {'serialize':>9} {'total':>7}"
    )
    rows = [("files", name) for name in runs[0]["files"]] + [("floors", name) for name in FLOOR_SOURCES]
    for section, name in rows:
        label = name if section == "files" else f"floor: {name}"
        values = {key: median(section, name, key) for key in runs[0][section][name] if key.endswith("_s")}
        print(
            f"  {label:30} {runs[0][section][name]['dags']:>5} {values['import_s']:>6.2f}s"
            f" {values['import_s'] / timeout:>10.1%} {values['serialize_s']:>8.2f}s"
            f" {values['import_cpu_s']:>10.2f}s {values['serialize_cpu_s']:>8.2f}s"
            f" {values['import_cpu_s'] + values['serialize_cpu_s']:>6.2f}s"
        )
    if len(runs[0]["files"]) > 1:
        every_file = [sum(total(result) for result in r["files"].values()) for r in runs]
        print(f"  all files of dags/, import and serialization (wall): {statistics.median(every_file):.2f}s")

    def delivery(run: dict) -> float:
        """The delivery file's CPU time in ``run``: the mean of its parses before and after
        the trivial floor, so a drift of the machine's speed within the run cancels out."""
        return (total(run["files"][DELIVERY_FILE], "_cpu_s") + total(run["delivery_again"], "_cpu_s")) / 2

    result = min(delivery(r) for r in runs)
    for name in FLOOR_SOURCES:
        floor = min(total(r["floors"][name], "_cpu_s") for r in runs)
        ratios = sorted(delivery(r) / total(r["floors"][name], "_cpu_s") for r in runs)
        goal = " (goal: at most 1.5x)" if name == "trivial" else ""
        print(
            f"  {DELIVERY_FILE} / floor {name}: x{statistics.median(ratios):.2f}{goal}, the median of"
            f" {len(runs)} runs' own ratios ({', '.join(f'x{x:.2f}' for x in ratios)});"
            f" fastest run of each: {1000 * result / oem_count:.1f} / {1000 * floor / oem_count:.1f} ms"
            f" per DAG = x{result / floor:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oems", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5, help="runs per fleet (the median ratio counts)")
    parser.add_argument("--all-files", action="store_true", help=f"every file of dags/, not only {DELIVERY_FILE}")
    parser.add_argument("--child", nargs=3, metavar=("OEMS", "FLOOR_DIR", "ALL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(parse_every_file(int(args.child[0]), Path(args.child[1]), args.child[2] == "1")))
        return
    from _machine import machine_line

    print(f"DAG-file parse time of {DAGS.relative_to(REPO)}/ against its floor (a fresh process per run)")
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        for oem_count in args.oems:
            report(oem_count, measure(oem_count, args.repeats, Path(tmp), args.all_files))


if __name__ == "__main__":
    main()
