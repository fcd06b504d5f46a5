"""Start a set of long-running processes and stop every one of them, whatever happens.

Each child runs in its own process group, so stopping it also stops what it
forked (Airflow's executors, gunicorn-style workers). Stopping escalates from
SIGTERM to SIGKILL after a grace period: `airflow standalone` showed that relying
on a polite signal alone leaves servers behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    command: list[str]
    log: Path
    process: subprocess.Popen | None = None


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    # told of each child as soon as it runs (make up records it for a later cleanup)
    on_start: Callable[[Child], None] | None = None

    def start(self, name: str, command: list[str], cwd: Path | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(name, command, self.log_dir / f"{name}.log")
        with open(child.log, "ab") as log:
            child.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group
            )
        self.children.append(child)
        if self.on_start:
            self.on_start(child)
        return child

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.process and c.process.poll() is not None), None)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM every group, wait up to ``grace`` seconds, then SIGKILL what is left."""
        live = [c for c in self.children if c.process]
        for child in live:
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.1, deadline - time.monotonic()))
        for child in live:
            _signal_group(child.process, signal.SIGKILL)  # also reaps grandchildren of exited parents
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(5)
        self.children.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
