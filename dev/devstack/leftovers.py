"""What a ``make up`` started, written down as it starts it, so that the next ``make up`` can
stop what a hard-killed one (SIGKILL, a closed terminal) left behind, and refuse ports that
something else holds.

The record names each process by pid *and* start time: a pid on its own may belong to an
unrelated process by the time it is read again (pids are reused), so only a process whose
start time still matches is ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# two reads of one process's start time agree to the clock tick; a reused pid started later
_SAME_START = 0.05


@dataclass(frozen=True)
class Recorded:
    name: str
    pid: int
    started: float  # psutil's create_time(): seconds since the epoch
    group: bool = False  # leads a process group of its own: stop the whole group

    @classmethod
    def of(cls, name: str, pid: int, group: bool = False) -> Recorded:
        return cls(name, pid, psutil.Process(pid).create_time(), group)

    def process(self) -> psutil.Process | None:
        """The recorded process if it still runs; None if it ended or its pid was reused."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > _SAME_START:
                return None  # another process got the pid
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.NoSuchProcess:
            return None

    def processes(self) -> list[psutil.Process]:
        """It and, for a group leader, every process still in its group (what it forked)."""
        leader = self.process()
        if not self.group:
            return [leader] if leader else []
        if leader is None and psutil.pid_exists(self.pid):
            return []  # the pid is another process now; its group is not ours
        # While any member of the group lives, Linux gives its id to no new process, so the
        # members found under it are what the recorded leader started.
        members = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(process.pid) == self.pid and process.status() != psutil.STATUS_ZOMBIE:
                    members.append(process)
        return members


class ProcessRecord:
    """``.airflow/up.json``: the running ``make up`` (owner) and every process it started."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> tuple[Recorded | None, list[Recorded]]:
        try:
            data = json.loads(self.path.read_text())
            return Recorded(**data["owner"]), [Recorded(**entry) for entry in data["processes"]]
        except FileNotFoundError:
            return None, []
        except (ValueError, KeyError, TypeError):
            return None, []  # unreadable (cut short by a crash): nothing in it can be trusted

    def owner_running(self) -> int | None:
        owner, _ = self.read()
        return owner.pid if owner and owner.process() else None

    def claim(self) -> None:
        """This process owns the record from now on, with nothing started yet."""
        self._write(Recorded.of("make up", os.getpid()), [])

    def add(self, name: str, pid: int, group: bool = False) -> None:
        owner, processes = self.read()
        self._write(owner, [*processes, Recorded.of(name, pid, group)])

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self, owner: Recorded | None, processes: list[Recorded]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"owner": asdict(owner), "processes": [asdict(p) for p in processes]}))
        temporary.replace(self.path)  # a reader never sees half a record


def stop_leftovers(record: ProcessRecord, grace: float = 10) -> list[Recorded]:
    """Stop what a dead earlier ``make up`` recorded (only those processes); return them.

    Call it only when the record's owner is not running."""
    _, recorded = record.read()
    found = [(entry, entry.processes()) for entry in recorded]
    found = [(entry, processes) for entry, processes in found if processes]
    victims = [process for _, processes in found for process in processes]
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(victims, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    # what a group member forked while it was being stopped
    late = [process for entry, _ in found if entry.group for process in entry.processes()]
    for process in late:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(late, timeout=5)
    record.clear()
    return [entry for entry, _ in found]


def port_holder(port: int) -> str | None:
    """None if ``port`` is free to listen on; otherwise who holds it, as far as can be told."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT port is free
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            pass
        else:
            return None
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="inet"):
            if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                if connection.pid is None:
                    break
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(connection.pid)
                    return f"pid {connection.pid} ({' '.join(process.cmdline())[:120]})"
                return f"pid {connection.pid}"
    return "another process"
