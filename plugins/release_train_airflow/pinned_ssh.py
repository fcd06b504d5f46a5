"""An SSHHook that trusts the connection's pinned host key and nothing else.

The provider's ``SSHHook.get_conn`` calls ``load_system_host_keys()`` before it adds the
pinned key, and paramiko consults those system keys (the worker user's
``~/.ssh/known_hosts``) *before* the client's own: a stale or planted known_hosts line
for an OEM's host would decide the check instead of the key the OEM's connection pins.
Here the client knows exactly one key, the pinned one, and refuses every host it does
not know (``RejectPolicy``). Imported only where an SSH connection is made.
"""

from __future__ import annotations

from typing import Any

import paramiko
from airflow.providers.ssh.hooks.ssh import SSH_PORT, SSHHook
from tenacity import Retrying, stop_after_attempt, wait_fixed, wait_random


class PinnedHostKeySSHHook(SSHHook):
    def get_conn(self) -> paramiko.SSHClient:
        if self.client:
            transport = self.client.get_transport()
            if transport and transport.is_active():
                return self.client
        if self.host_key is None or self.no_host_key_check or self.allow_host_key_change:
            raise ValueError(f"connection {self.ssh_conn_id!r} pins no host key: refusing to connect")
        client = paramiko.SSHClient()
        # no load_system_host_keys(), no load_host_keys(): the pinned key is the only one
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        host = self.remote_host if self.port == SSH_PORT else f"[{self.remote_host}]:{self.port}"
        client.get_host_keys().add(host, self.host_key.get_name(), self.host_key)
        connect: dict[str, Any] = {
            "hostname": self.remote_host,
            "username": self.username,
            "timeout": self.conn_timeout,
            "compress": self.compress,
            "port": self.port,
            "sock": self.host_proxy,
            "look_for_keys": self.look_for_keys,
            "banner_timeout": self.banner_timeout,
            "auth_timeout": self.auth_timeout,
        }
        optional = {
            "password": (self.password or "").strip(),
            "pkey": self.pkey,
            "key_filename": self.key_file,
            "disabled_algorithms": self.disabled_algorithms,
        }
        connect.update({name: value for name, value in optional.items() if value})
        # the same retries as the provider's hook; a wrong host key fails every attempt alike
        for attempt in Retrying(
            reraise=True, wait=wait_fixed(3) + wait_random(0, 2), stop=stop_after_attempt(self.conn_retry_attempts)
        ):
            with attempt:
                client.connect(**connect)
        if self.keepalive_interval:
            client.get_transport().set_keepalive(self.keepalive_interval)
        if self.ciphers:
            client.get_transport().get_security_options().ciphers = self.ciphers
        self.client = client
        return client
