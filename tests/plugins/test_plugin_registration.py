"""``plugins/release_train_plugin.py``: what Airflow loads in every process that needs
a plugin, the DAG processor included."""

import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]


def test_loading_the_plugin_builds_no_portal():
    """The DAG processor loads plugins to serialize a DAG on our timetable; the portal
    (FastAPI) is the api-server's alone."""
    probe = "import sys, release_train_plugin; print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'))"
    env = {"PYTHONPATH": f"{REPO / 'include'}:{REPO / 'plugins'}", "PATH": ""}
    loaded = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_the_portal_mounted_from_the_plugin_routes_like_the_portal_itself():
    """Airflow mounts the plugin's app under ``/oem-portal``; its first request builds
    the portal, and ``url_for`` (the login redirect) resolves through the mount."""
    from release_train_plugin import ReleaseTrainPlugin

    (entry,) = ReleaseTrainPlugin.fastapi_apps
    server = FastAPI()
    server.mount(entry["url_prefix"], entry["app"])
    client = TestClient(server, follow_redirects=False)
    docs = client.get("/oem-portal/docs")
    assert (docs.status_code, docs.headers["location"]) == (303, "http://testserver/oem-portal/login")
    assert 'name="token"' in client.get("/oem-portal/login").text
