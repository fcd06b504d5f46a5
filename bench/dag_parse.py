"""DAG-file parse time of dags/ for fleets of 10, 100 and 1,000 OEMs.

Each file is processed as Airflow's DAG processor does it: a process with Airflow
imported forks one child per file, which pre-imports the Airflow modules the file
names and runs the processor's own ``_parse_file`` (import the file into a DagBag,
the part ``dagbag_import_timeout`` bounds, then serialize its DAGs). Printed per
file: the import (minimum and median over the repeats, and its share of the
timeout) and the serialization.

    .venv/bin/python bench/dag_parse.py [--oems 10 100 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
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


def parse_every_file() -> dict:
    """In the child: with Airflow imported once, fork a process per DAG file and parse
    it there, as the DAG processor manager does."""
    started = time.perf_counter()
    from airflow.configuration import conf
    from airflow.dag_processing import processor  # noqa: F401  (imported before the forks, like the manager)

    results = {
        "airflow_import_s": time.perf_counter() - started,
        "timeout_s": conf.getfloat("core", "dagbag_import_timeout"),
    }
    for path in sorted(DAGS.glob("*.py")):
        read_end, write_end = os.pipe()
        if (pid := os.fork()) == 0:
            os.close(read_end)
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(parse_one_file(path)))
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            results[path.name] = json.loads(answer.read() or "null")
        os.waitpid(pid, 0)
        if results[path.name] is None or "error" in results[path.name]:
            raise SystemExit(f"{path.name}: {results[path.name]}")
    return results


def parse_one_file(path: Path) -> dict:
    """The two steps of the processor's ``_parse_file``, timed apart."""
    import structlog
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.dag_processing.processor import _pre_import_airflow_modules, _serialize_dags

    log = structlog.get_logger()
    begun = time.perf_counter()
    _pre_import_airflow_modules(str(path), log)
    bag = BundleDagBag(dag_folder=str(path), bundle_path=DAGS, bundle_name="dags-folder", load_op_links=False)
    imported = time.perf_counter()
    serialized, errors = _serialize_dags(bag, log)
    finished = time.perf_counter()
    if bag.import_errors or errors:
        return {"error": {**bag.import_errors, **errors}}
    return {"import_s": imported - begun, "serialize_s": finished - imported, "dags": len(serialized)}


def measure(oem_count: int, repeats: int, workdir: Path) -> list[dict]:
    # Only here, in the parent: the measuring child imports nothing but Airflow before
    # it forks, as the DAG processor manager does, so no DAG file finds our modules loaded.
    sys.path[:0] = [str(REPO / "include"), str(REPO / "dev")]
    from devstack.airflow_env import airflow_environment
    from devstack.fleet import write_fleet_config
    from release_pipeline.config_loading import CONFIG_DIR_ENV

    config = write_fleet_config(workdir / f"config-{oem_count}", oem_count)
    env = {**os.environ, **airflow_environment(workdir / "airflow-home"), CONFIG_DIR_ENV: str(config)}
    runs = []
    for _ in range(repeats):
        answer = subprocess.run(
            [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=False
        )
        if answer.returncode != 0:
            raise SystemExit(f"parsing with {oem_count} OEMs failed:\n{answer.stderr[-3000:]}")
        runs.append(json.loads(answer.stdout.strip().splitlines()[-1]))
    return runs


def report(oem_count: int, runs: list[dict]) -> None:
    files = [name for name in runs[0] if name.endswith(".py")]
    timeout = runs[0]["timeout_s"]
    print(f"\n{oem_count} OEMs (import of Airflow itself: {min(r['airflow_import_s'] for r in runs):.2f} s)")
    print(f"  {'file':26} {'DAGs':>5} {'import min':>10} {'median':>7} {'of timeout':>10} {'serialize':>10}")
    for name in files:
        imports = [r[name]["import_s"] for r in runs]
        serialize = [r[name]["serialize_s"] for r in runs]
        print(
            f"  {name:26} {runs[0][name]['dags']:>5} {min(imports):>9.2f}s {statistics.median(imports):>6.2f}s"
            f" {statistics.median(imports) / timeout:>10.1%} {statistics.median(serialize):>9.2f}s"
        )
    total = [sum(r[name]["import_s"] + r[name]["serialize_s"] for name in files) for r in runs]
    print(f"  all files, import and serialization: {min(total):.2f}s min, {statistics.median(total):.2f}s median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oems", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(parse_every_file()))
        return
    print(f"DAG-file parse time of {DAGS.relative_to(REPO)}/ ({args.repeats} runs each, a fresh process per run)")
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        for oem_count in args.oems:
            report(oem_count, measure(oem_count, args.repeats, Path(tmp)))


if __name__ == "__main__":
    main()
