"""devstack.leftovers: what a hard-killed `make up` left running is stopped by the next one,
exactly those processes (pid and start time), and ports held by others are named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from devstack.leftovers import ProcessRecord, Recorded, port_holder, stop_leftovers

# a parent in a session of its own that forks a child, as the Airflow components do
FORKING = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"
)


def spawn(code: str = "import time; time.sleep(120)", group: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=group)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_dead_owners_processes_and_what_they_forked_are_stopped(tmp_path, processes):
    record = ProcessRecord(tmp_path / "up.json")
    owner = spawn()
    processes.append(owner)
    record._write(Recorded.of("make up", owner.pid), [])
    group_leader = spawn(FORKING, group=True)
    single = spawn()
    processes += [group_leader, single]
    record.add("scheduler", group_leader.pid, group=True)
    record.add("simulator", single.pid)
    # the leader's child is in its group
    psutil_leader = psutil.Process(group_leader.pid)
    deadline = time.monotonic() + 10
    while not psutil_leader.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = psutil_leader.children()[0].pid

    assert record.owner_running() == owner.pid
    owner.kill()
    owner.wait()
    assert record.owner_running() is None

    stopped = stop_leftovers(record, grace=5)
    assert [entry.name for entry in stopped] == ["scheduler", "simulator"]
    for pid in (group_leader.pid, single.pid, grandchild):
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), pid
    assert not record.path.exists()


def test_a_pid_that_now_belongs_to_another_process_is_left_alone(tmp_path, processes):
    record = ProcessRecord(tmp_path / "up.json")
    stranger = spawn(group=True)
    processes.append(stranger)
    started = psutil.Process(stranger.pid).create_time()
    # the record says that pid started a minute earlier: it is not the recorded process any more
    record._write(
        Recorded("make up", 2**22 + 1, 0.0),
        [
            Recorded("api-server", stranger.pid, started - 60, group=True),
            Recorded("simulator", stranger.pid, started - 60),
        ],
    )
    assert record.owner_running() is None
    assert stop_leftovers(record, grace=1) == []
    assert alive(stranger.pid)


def test_an_unreadable_record_stops_nothing(tmp_path):
    record = ProcessRecord(tmp_path / "up.json")
    record.path.write_text('{"owner": {"name": "make up", "pid": 1')
    assert record.read() == (None, [])
    assert stop_leftovers(record) == []


def test_a_listening_port_is_named_with_its_holder_and_a_free_one_is_not():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        holder = port_holder(port)
        # the holder by pid (its command line varies: pytest-xdist renames its workers)
        assert holder is not None and holder.startswith(f"pid {os.getpid()} (")
    assert port_holder(port) is None
