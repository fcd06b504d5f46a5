"""The OEM instances over SSH (asyncssh): one login per OEM, key authentication only,
and a host key kept in the state directory so it stays the same across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh

from simulator.state import SimulatorState


def ensure_keys(state_dir: Path) -> dict[str, Path]:
    """The host key and the one client key the pipeline logs in with; made once."""
    keys = {"host": state_dir / "ssh_host_ed25519_key", "client": state_dir / "client_ed25519_key"}
    for path in keys.values():
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(path))
            path.chmod(0o600)
            key.write_public_key(str(path) + ".pub")
    return keys


def public_key(path: Path) -> str:
    """``ssh-ed25519 AAAA...`` of a private key file."""
    return Path(str(path) + ".pub").read_text().split(" comment")[0].strip()


class _OemLogins(asyncssh.SSHServer):
    def __init__(self, state: SimulatorState):
        self._state = state

    def begin_auth(self, username: str) -> bool:
        return True  # every login must authenticate

    def password_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key) -> bool:
        # Called only for keys listed in authorized_client_keys; the user must be an OEM.
        return username in self._state.oems


async def start_ssh_server(state: SimulatorState, state_dir: Path, host: str, port: int):
    keys = ensure_keys(state_dir)

    async def handle(process: asyncssh.SSHServerProcess) -> None:
        oem_id = process.get_extra_info("username")
        instance = state.oems[oem_id]
        command = process.command or ""
        if instance.install_seconds and instance.run(command)[0] in ("install", "rollback"):
            await asyncio.sleep(instance.install_seconds)
        result = state.execute(oem_id, command)
        process.stdout.write(result.stdout)
        process.stderr.write(result.stderr)
        process.exit(result.exit_status)

    return await asyncssh.listen(
        host,
        port,
        server_host_keys=[str(keys["host"])],
        authorized_client_keys=str(keys["client"]) + ".pub",
        server_factory=lambda: _OemLogins(state),
        process_factory=handle,
        encoding="utf-8",
    )
