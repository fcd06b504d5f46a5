"""Start the simulator as a child process and talk to its control API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# the simulator (dev/) and the domain it uses (include/): this checkout's code, whatever is installed
DEV_DIR = Path(__file__).resolve().parents[1]
INCLUDE_DIR = DEV_DIR.parent / "include"


@dataclass(frozen=True)
class SimulatorEndpoints:
    http_url: str
    ssh_host: str
    ssh_port: int
    ssh_host_key: str
    ssh_client_key_file: str
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 0

    @classmethod
    def from_ready_file(cls, path: Path) -> SimulatorEndpoints:
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class SimulatorProcess:
    """``with SimulatorProcess(state_dir) as sim:`` runs one simulator for the block."""

    def __init__(
        self,
        state_dir: Path,
        *,
        http_port: int = 0,
        ssh_port: int = 0,
        smtp_port: int = 0,
        oems: Path | None = None,
        initial_version: str | None = None,
        demo: bool = False,
        log_file: Path | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.args = ["--state-dir", str(self.state_dir), "--http-port", str(http_port), "--ssh-port", str(ssh_port)]
        self.args += ["--smtp-port", str(smtp_port)]
        if oems:
            self.args += ["--oems", str(oems)]
        if initial_version:
            self.args += ["--initial-version", initial_version]
        if demo:
            self.args.append("--demo")
        self.log_file = log_file or self.state_dir / "simulator.log"
        self.process: subprocess.Popen | None = None
        self.endpoints: SimulatorEndpoints | None = None

    def start(self, timeout: float = 30, on_spawn: Callable[[int], None] | None = None) -> SimulatorEndpoints:
        """Start it and wait until it serves; ``on_spawn(pid)`` runs as soon as the process exists."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready = self.state_dir / "ready.json"
        ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(DEV_DIR), str(INCLUDE_DIR), os.environ.get("PYTHONPATH")])),
        }
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "simulator", *self.args], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        if on_spawn:
            on_spawn(self.process.pid)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {self.process.returncode}; see {self.log_file}:\n"
                    + self.log_file.read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"simulator not ready after {timeout}s; see {self.log_file}")
            time.sleep(0.05)
        self.endpoints = SimulatorEndpoints.from_ready_file(ready)
        return self.endpoints

    def stop(self, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client(self) -> SimulatorClient:
        assert self.endpoints is not None, "start() the simulator first"
        return SimulatorClient(self.endpoints.http_url)

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class SimulatorClient:
    """The ``/_sim`` control API: inject faults, add changes, read what was received."""

    def __init__(self, base_url: str):
        self._http = httpx.Client(base_url=base_url, timeout=10)

    def _ok(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._ok(self._http.post("/_sim/reset"))

    def state(self) -> dict:
        return self._ok(self._http.get("/_sim/state"))

    def add_changes(self, changes: list[dict]) -> None:
        self._ok(self._http.post("/_sim/changes", json=changes))

    def set_feed_raw(self, body: str | None) -> None:
        self._ok(self._http.put("/_sim/feed/raw", content=body or ""))

    def set_qa(self, release_id: str, status: str) -> None:
        self._ok(self._http.put(f"/_sim/qa/{release_id}", json={"status": status}))

    def production(self, **patch: Any) -> None:
        self._ok(self._http.patch("/_sim/production", json=patch))

    def portal_down(self, portal: str, down: bool = True) -> None:
        self._ok(self._http.patch(f"/_sim/docs/{portal}", json={"down": down}))

    def channel_down(self, channel: str, down: bool = True) -> None:
        self._ok(self._http.patch(f"/_sim/channels/{channel}", json={"down": down}))

    def oem(self, oem_id: str, **patch: Any) -> None:
        self._ok(self._http.patch(f"/_sim/oems/{oem_id}", json=patch))

    def notifications(self, channel: str | None = None) -> list[dict]:
        received = self.state()["notifications"]
        return [n for n in received if channel is None or n["channel"] == channel]

    def mail(self, oem_id: str | None = None) -> list[dict]:
        """What the SMTP server accepted (raw messages), optionally only what reached ``oem_id``."""
        received = self.state()["mail"]
        return [m for m in received if oem_id is None or oem_id in m["oems"]]

    def refuse_recipients(self, *addresses: str) -> None:
        """The SMTP server answers 550 to these recipients from now on (none: accept all)."""
        self._ok(self._http.patch("/_sim/mail", json={"refused_recipients": list(addresses)}))

    def docs(self, portal: str) -> dict[str, dict]:
        return self.state()["docs"].get(portal, {})
