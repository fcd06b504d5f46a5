"""What the benchmarks that run real Airflow share: a stack on throw-away PostgreSQL
databases with a DAG folder of its own, and CPU/memory of a process tree."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins"), str(REPO / "dev")]

import psutil  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from devstack.fleet import write_fleet_config  # noqa: E402
from devstack.postgres import ThrowawayDatabases  # noqa: E402
from devstack.stack import Stack, StackConfig, free_port  # noqa: E402
from release_pipeline.db import sync_url  # noqa: E402

PG_URL_ENV = "RELEASE_TRAIN_BENCH_PG_URL"
PG_URL = os.environ.get(PG_URL_ENV, "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def postgres_stack(
    dag_files: dict[str, str], *, fleet: int | None = None, extra_env: dict | None = None, **config
) -> Iterator[tuple[Stack, str]]:
    """A running Stack on PostgreSQL metadata and release databases of its own whose DAG
    folder holds only ``dag_files`` (file name: source), with ``fleet`` N generated OEMs;
    yields it and the release database's URL. Everything is stopped and dropped afterwards."""
    with ThrowawayDatabases(PG_URL) as databases, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        metadata, release_db = databases.create("bench_airflow"), databases.create("bench_release")
        home = Path(tmp) / "stack"
        folder = home / "bench_dags"
        folder.mkdir(parents=True)
        for name, source in dag_files.items():
            (folder / name).write_text(source)
        stack_config = StackConfig(
            home=home,
            api_port=free_port(),
            metadata_url=metadata.replace("postgresql://", "postgresql+psycopg://", 1),
            release_db_url=release_db,
            config_dir=write_fleet_config(Path(tmp) / "config", fleet) if fleet else None,
            demo_changes=False,
            log_server_ports=None,
            extra_env={"AIRFLOW__CORE__DAGS_FOLDER": str(folder), **(extra_env or {})},
            **config,
        )
        with Stack(stack_config) as stack:
            yield stack, release_db


def transactions(url: str) -> int:
    """Transactions in the database at ``url`` so far, PostgreSQL's own count: a read
    through SQLAlchemy ends with a rollback, so both endings count."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("select pg_stat_clear_snapshot()"))
            return conn.execute(
                text("select xact_commit + xact_rollback from pg_stat_database where datname = current_database()")
            ).scalar_one()
    finally:
        engine.dispose()


@dataclass
class TreeUsage:
    cpu_share: float  # of one core, over the window
    rss_mb: float
    processes: int


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure_tree(pid: int, seconds: float) -> TreeUsage:
    """CPU share and resident memory of ``pid`` and its children over ``seconds``."""
    processes = tree(pid)
    before, started = cpu_seconds(processes), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu_seconds(processes) - before, time.monotonic() - started
    rss = sum(p.memory_info().rss for p in processes if p.is_running())
    return TreeUsage(cpu_share=used / elapsed, rss_mb=rss / 2**20, processes=len(processes))
