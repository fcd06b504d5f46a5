"""An OEM's platform instance: its commands over SSH and its health endpoint."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException

from release_pipeline.delivery_process import VERSION_TIMEOUT_SECONDS, CommandResult
from release_pipeline.registry import Oem, ssh_host_key_problem

# EX_TEMPFAIL: the instance says "try again" (e.g. a package mirror timed out)
TRANSIENT_EXIT_CODES = frozenset({75})
CONNECT_TIMEOUT_SECONDS = 30


class TransientInstanceError(AirflowException):
    """Worth retrying: the connection dropped or the instance asked to try again."""


def pinned_ssh_hook(oem: Oem, **kwargs):
    """The OEM's SSH hook, refusing a connection that does not pin the instance's host key:
    SSHHook would otherwise trust the system's known_hosts, or any key with
    ``no_host_key_check``. Not transient: retrying cannot fix the connection. The hook
    checks the server against the pinned key only, never against a known_hosts file
    (``pinned_ssh``)."""
    from release_train_airflow.pinned_ssh import PinnedHostKeySSHHook

    hook = PinnedHostKeySSHHook(ssh_conn_id=oem.connections.ssh, no_host_key_check=False, **kwargs)
    if hook.host_key is None or hook.allow_host_key_change:
        from airflow.sdk import BaseHook

        problem = ssh_host_key_problem(oem, BaseHook.get_connection(oem.connections.ssh).extra_dejson)
        raise AirflowException(problem or f"OEM {oem.id!r}: connection {oem.connections.ssh!r} pins no host key")
    return hook


def run(oem: Oem, command: str, *, timeout: float) -> CommandResult:
    """Run ``command`` on the OEM's instance, bounded by ``timeout`` seconds (plus the
    connect timeout); SSH trouble is a transient error."""
    hook = pinned_ssh_hook(oem, cmd_timeout=timeout, conn_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        with hook.get_conn() as client:
            status, out, err = hook.exec_ssh_client_command(client, command, get_pty=False, environment=None)
    except Exception as exc:
        raise TransientInstanceError(f"OEM {oem.id!r}: SSH to the instance failed: {exc}") from exc
    result = CommandResult(command, status, out.decode(errors="replace"), err.decode(errors="replace"))
    if status in TRANSIENT_EXIT_CODES:
        raise TransientInstanceError(f"OEM {oem.id!r}: {command!r} asked to try again: {result.stderr.strip()}")
    return result


def version(oem: Oem) -> str:
    result = run(oem, oem.commands.render("version"), timeout=VERSION_TIMEOUT_SECONDS)
    if result.exit_status != 0 or not result.stdout.strip():
        raise AirflowException(f"OEM {oem.id!r}: cannot read the installed version:\n{result.excerpt()}")
    return result.stdout.strip().splitlines()[-1].strip()


def health(oem: Oem) -> tuple[bool, str]:
    """(healthy, what the health endpoint said)."""
    from airflow.providers.http.hooks.http import HttpHook

    try:
        answer = HttpHook("GET", http_conn_id=oem.connections.health).run(
            "health", extra_options={"timeout": 30, "check_response": False}
        )
    except Exception as exc:
        return False, f"health endpoint unreachable: {exc}"
    body = answer.text[:300]
    try:
        healthy = answer.status_code == 200 and answer.json().get("status") == "ok"
    except ValueError:
        healthy = False
    return healthy, f"{answer.status_code} {body}"


class SshInstance:
    """The delivery process's instance port, over SSH and HTTP."""

    version = staticmethod(version)
    health = staticmethod(health)
    run = staticmethod(run)
