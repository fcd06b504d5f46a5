"""make up's demo change source: a real git repository written from the demo changes at their
merge times (``devstack.demo_config.git_change_source``). The git change source reads back
exactly what the simulator's HTTP feed says for every release span, and ``git log`` shows it."""

from __future__ import annotations

import shutil
import subprocess

import pendulum
import time_machine

from devstack.demo_config import git_change_source
from release_pipeline.change_feed import parse_changes
from release_pipeline.release_calendar import load_calendar
from release_pipeline.vendor import load_vendor
from release_train_airflow.change_sources import change_feed
from simulator.demo import demo_changes
from tests.conftest import REPO

NOW = pendulum.datetime(2026, 11, 30, 10, tz="UTC")


def test_the_demo_repository_holds_what_the_demo_feed_does(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    with time_machine.travel(NOW, tick=False):
        fed = demo_changes()
        history = git_change_source(config, tmp_path / "demo-platform")
        # make up runs it again on the same home: written afresh
        assert git_change_source(config, tmp_path / "demo-platform") == history
    source = load_vendor(config / "vendor.yaml").change_source
    assert source.kind == "git" and source.repository == str(history)
    expected = parse_changes(
        {"changes": fed}.__repr__().replace("'", '"').replace("False", "false").replace("True", "true")
    )
    train = load_calendar()
    current = train.release_at(NOW)
    for index in range(current.index - 3, current.index + 2):  # the demo's spans, the last one up to now
        release, previous = train.release(index), train.release(index - 1)
        read = change_feed(release.id, source)(previous.at, release.at)
        assert read == [c for c in expected if previous.at <= c.merged_at < release.at], release.id
        assert read, f"demo release {release.id} has changes"
    log = subprocess.run(["git", "log", "--format=%s%n%b"], cwd=history, capture_output=True, text=True, check=True)
    for change in fed:
        assert change["title"] in log.stdout and f"Change-Id: {change['id']}" in log.stdout
