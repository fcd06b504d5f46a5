"""The machine a benchmark ran on, in one line, so every figure printed says where it
was measured (a shared 2-core box and a quiet 16-core one give different floors)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    try:
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return "?"
    return f"{total_kib / 2**20:.0f} GiB"


def machine_line() -> str:
    """CPU, cores, memory, OS, Python and Airflow versions, and the load when it began."""
    try:
        airflow = version("apache-airflow")
    except PackageNotFoundError:
        airflow = "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {memory_gib()}, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}, Airflow {airflow}; load average {load}"
    )
