"""Run the platform simulator: ``python -m simulator --state-dir DIR``.

Serves HTTP and SSH from one asyncio loop sharing one state, and writes
``DIR/ready.json`` (the ports it listens on and its keys) once both accept
connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path

import uvicorn

from release_pipeline.mail_address import bare_address
from release_pipeline.registry import load_registry
from simulator.demo import demo_changes
from simulator.http_app import build_app
from simulator.smtp_server import start_smtp_server
from simulator.ssh_server import ensure_keys, public_key, start_ssh_server
from simulator.state import SimulatorState


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--ssh-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--smtp-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--oems", type=Path, help="OEM registry to play instances for (default: config/oems.yaml)")
    parser.add_argument("--initial-version", help="release id every instance starts on")
    parser.add_argument("--demo", action="store_true", help="fill the change feed with demo changes")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = args.state_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    registry = load_registry(args.oems)
    mailboxes = {bare_address(a): o.id for o in registry.oems.values() if o.email for a in (*o.email.to, *o.email.cc)}
    state = SimulatorState({o.id: o.commands for o in registry.oems.values()}, args.initial_version, mailboxes)
    if args.demo:
        state.changes.extend(demo_changes())

    ssh = await start_ssh_server(state, args.state_dir, args.host, args.ssh_port)
    ssh_port = ssh.sockets[0].getsockname()[1]
    smtp = await start_smtp_server(state, args.host, args.smtp_port)
    smtp_port = smtp.sockets[0].getsockname()[1]
    config = uvicorn.Config(build_app(state), host=args.host, port=args.http_port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # we handle SIGINT/SIGTERM below
    http = asyncio.create_task(server.serve())
    while not server.started:
        if http.done():
            await http  # raises why the HTTP server could not start
        await asyncio.sleep(0.02)
    http_port = server.servers[0].sockets[0].getsockname()[1]

    keys = ensure_keys(args.state_dir)
    ready = {
        "pid": os.getpid(),
        "http_url": f"http://{args.host}:{http_port}",
        "ssh_host": args.host,
        "ssh_port": ssh_port,
        "ssh_host_key": public_key(keys["host"]),
        "ssh_client_key_file": str(keys["client"].resolve()),
        "smtp_host": args.host,
        "smtp_port": smtp_port,
    }
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(ready, indent=2))
    tmp.replace(ready_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.should_exit = True
    ssh.close()
    smtp.close()
    await http
    ready_file.unlink(missing_ok=True)


def main(argv=None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
