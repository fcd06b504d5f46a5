"""The simulator behaves like the systems it stands in for, reached the way the
pipeline reaches them: Airflow's HTTP and SSH hooks over the generated connections."""

import json

import httpx
import pendulum
import pytest

from devstack.stack import wait_until
from release_pipeline.registry import load_registry
from simulator.connections import as_environment, simulator_connections


@pytest.fixture
def connections(simulator, monkeypatch):
    conns = simulator_connections(simulator.endpoints, load_registry().oems.values())
    for name, value in as_environment(conns).items():
        monkeypatch.setenv(name, value)
    return conns


def ssh(conn_id: str, command: str):
    from airflow.providers.ssh.hooks.ssh import SSHHook

    hook = SSHHook(ssh_conn_id=conn_id, cmd_timeout=10)
    with hook.get_conn() as client:
        return hook.exec_ssh_client_command(client, command, get_pty=False, environment=None)


def test_oem_instances_over_ssh_with_key_auth_and_a_pinned_host_key(sim, connections):
    status, out, _ = ssh("oem_nimbus_ssh", "ava-ctl version")
    assert (status, out.decode().strip()) == (0, "2026.22")
    status, out, _ = ssh("oem_nimbus_ssh", "ava-ctl install 2026.24")
    assert status == 0 and "installed 2026.24" in out.decode()
    # each OEM is its own instance, with its own command templates
    assert ssh("oem_kestrel_ssh", "kestrel-admin platform-version")[1].decode().strip() == "2026.22"
    assert ssh("oem_kestrel_ssh", "ava-ctl version")[0] == 127
    assert sim.state()["oems"]["nimbus"]["version"] == "2026.24"


def test_ssh_refuses_a_wrong_host_key(sim, connections, monkeypatch):
    from airflow.providers.ssh.hooks.ssh import SSHHook

    conn = dict(connections["oem_nimbus_ssh"])
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"
    conn["extra"] = {**conn["extra"], "host_key": other}
    monkeypatch.setenv("AIRFLOW_CONN_OEM_NIMBUS_SSH", json.dumps(conn))
    with pytest.raises(Exception, match="(?i)host key|not found in known_hosts"):
        SSHHook(ssh_conn_id="oem_nimbus_ssh", cmd_timeout=5, conn_timeout=5).get_conn()


def test_injected_install_faults(sim, connections):
    sim.oem("orbitel", install_failures=1, break_on_install=True)
    assert ssh("oem_orbitel_ssh", "ava-ctl install 2026.24")[0] == 75  # transient
    assert ssh("oem_orbitel_ssh", "ava-ctl install 2026.24")[0] == 0
    health = httpx.get(connections["oem_orbitel_health"]["host"] + "/health")
    assert health.status_code == 503 and health.json()["version"] == "2026.24"
    assert ssh("oem_orbitel_ssh", "ava-ctl rollback 2026.22")[0] == 0
    assert httpx.get(connections["oem_orbitel_health"]["host"] + "/health").json() == {
        "status": "ok",
        "version": "2026.22",
    }


def test_http_apis_through_the_http_hook(sim, connections):
    from airflow.providers.http.hooks.http import HttpHook

    merged = pendulum.datetime(2026, 11, 20, 12, tz="UTC")
    sim.add_changes(
        [
            {
                "id": "AVA-1",
                "type": "fix",
                "component": "x",
                "title": "t",
                "description": "d",
                "breaking": False,
                "merged_at": merged.isoformat(),
            }
        ]
    )
    feed = HttpHook("GET", http_conn_id="change_feed").run(
        "changes", data={"since": merged.subtract(days=1).isoformat(), "until": merged.add(days=1).isoformat()}
    )
    assert [c["id"] for c in feed.json()["changes"]] == ["AVA-1"]

    deploy = HttpHook("POST", http_conn_id="ava_production")
    first = deploy.run("deployments", json={"release_id": "2026.24"}, headers={"Idempotency-Key": "k1"}).json()
    again = deploy.run("deployments", json={"release_id": "2026.24"}, headers={"Idempotency-Key": "k1"}).json()
    assert first["id"] == again["id"]  # the same deployment, not a second one

    HttpHook("PUT", http_conn_id="oem_nimbus_docs").run(
        "pages/releases/2026.24", json={"title": "Nimbus Connect 2026.24", "markdown": "# hi"}
    )
    assert sim.docs("nimbus")["releases/2026.24"]["title"] == "Nimbus Connect 2026.24"

    HttpHook("POST", http_conn_id="oem_nimbus_notify").run("", json={"subject": "hello"})
    assert [n["message"]["subject"] for n in sim.notifications("nimbus")] == ["hello"]


def test_outages_answer_503(sim, connections):
    sim.portal_down("kestrel")
    sim.channel_down("orbitel")
    assert (
        httpx.put(
            connections["oem_kestrel_docs"]["host"] + "/pages/x", json={"title": "t", "markdown": "m"}
        ).status_code
        == 503
    )
    assert httpx.post(connections["oem_orbitel_notify"]["host"], json={}).status_code == 503
    assert sim.notifications() == []


def test_host_key_is_stable_across_restarts(tmp_path):
    from simulator.process import SimulatorProcess

    with SimulatorProcess(tmp_path) as first:
        key = first.endpoints.ssh_host_key
    with SimulatorProcess(tmp_path) as second:
        assert second.endpoints.ssh_host_key == key


def test_the_pipelines_ssh_runs_only_over_a_pinned_host_key(sim, connections, monkeypatch):
    """``instance.run`` (every version check, install and rollback) with the simulator's
    stable host key; refused without a pinned key, and with the wrong one."""
    from airflow.sdk.exceptions import AirflowException

    from release_train_airflow import instance

    nimbus = load_registry().get("nimbus")
    assert instance.version(nimbus) == "2026.22"

    conn = dict(connections["oem_nimbus_ssh"])
    for extra in (
        {"key_file": conn["extra"]["key_file"]},  # no host key: SSHHook would use known_hosts
        {"key_file": conn["extra"]["key_file"], "no_host_key_check": True},  # would accept any key
        {**conn["extra"], "allow_host_key_change": True},
    ):
        monkeypatch.setenv("AIRFLOW_CONN_OEM_NIMBUS_SSH", json.dumps({**conn, "extra": extra}))
        with pytest.raises(AirflowException, match="OEM 'nimbus': connection 'oem_nimbus_ssh'") as refused:
            instance.run(nimbus, "ava-ctl install 2026.24", timeout=60)
        assert not isinstance(refused.value, instance.TransientInstanceError)  # no retry fixes it

    wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"
    monkeypatch.setenv(
        "AIRFLOW_CONN_OEM_NIMBUS_SSH", json.dumps({**conn, "extra": {**conn["extra"], "host_key": wrong}})
    )
    with pytest.raises(instance.TransientInstanceError, match="(?i)host key|not found in known_hosts"):
        instance.run(nimbus, "ava-ctl install 2026.24", timeout=60)
    assert sim.state()["oems"]["nimbus"]["version"] == "2026.22"  # nothing ran anywhere


@pytest.mark.parametrize("trusted_by", ["known_hosts", "pinned"])
def test_the_pinned_host_key_is_the_only_key_an_install_trusts(
    sim, simulator, connections, monkeypatch, tmp_path, trusted_by
):
    """The worker user's ``~/.ssh/known_hosts`` (HOME points at a fresh directory) holds a
    line for the instance's address, and paramiko would consult it before the pinned key:
    a known_hosts line with the server's real key does not let an install connect when the
    connection pins another key, and a known_hosts line with another key does not stop the
    install that pins the server's real key."""
    from release_train_airflow import instance

    server_key = simulator.endpoints.ssh_host_key
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"
    known_hosts_key, pinned_key = (server_key, other_key) if trusted_by == "known_hosts" else (other_key, server_key)
    conn = connections["oem_nimbus_ssh"]
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(f"[{conn['host']}]:{conn['port']} {known_hosts_key}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_OEM_NIMBUS_SSH", json.dumps({**conn, "extra": {**conn["extra"], "host_key": pinned_key}})
    )
    nimbus = load_registry().get("nimbus")
    if trusted_by == "known_hosts":
        with pytest.raises(instance.TransientInstanceError, match="(?i)host key"):
            instance.run(nimbus, "ava-ctl install 2026.24", timeout=60)
        assert sim.state()["oems"]["nimbus"]["version"] == "2026.22"  # nothing ran
    else:
        assert instance.run(nimbus, "ava-ctl install 2026.24", timeout=60).exit_status == 0
        assert sim.state()["oems"]["nimbus"]["version"] == "2026.24"


def test_an_install_that_hangs_is_cut_off_at_its_timeout(sim, connections):
    """``instance.run`` bounds the command by the timeout it is given (SSHHook's
    ``cmd_timeout``): an install hanging on the instance ends as a transient error at the
    timeout, and the task retries, instead of holding the worker and the instance's lock."""
    import time

    from release_train_airflow import instance

    nimbus = load_registry().get("nimbus")
    sim.oem("nimbus", install_seconds=5)
    started = time.monotonic()
    with pytest.raises(instance.TransientInstanceError, match="SSH to the instance failed"):
        instance.run(nimbus, "ava-ctl install 2026.24", timeout=1)
    assert time.monotonic() - started < 4
    # the instance finishes the abandoned install on its own: let it, here, so it does not
    # land in the next test's simulator state (seen in CI: a delivery test found 2026.24)
    wait_until(lambda: sim.state()["oems"]["nimbus"]["version"] == "2026.24", 30, "the abandoned install")
