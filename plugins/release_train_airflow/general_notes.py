"""The tasks of a general_release_notes run, defined once: the vendor's general notes
of a notes window, published on its documentation portal once the window's releases
are settled. OEM docs are not touched here: they follow each OEM's instance
(oem_delivery)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowSkipException

from release_pipeline.models import ReleaseStatus
from release_pipeline.notes import Audience, release_sections, render_release_notes
from release_pipeline.run_targets import newest_settled_window
from release_pipeline.vendor import load_vendor
from release_train_airflow import outbound, run_targets
from release_train_airflow.resources import calendar, repository


@task(multiple_outputs=True)
def notes_window(params=None, data_interval_end=None) -> dict[str, Any]:
    """The window a run publishes: the window of the release named in the params, else
    for a manual run the newest window whose releases are settled, else this run's."""
    train, override = calendar(), params["release_id"]
    if not override and run_targets.is_manual_run():
        choice = run_targets.choose(newest_settled_window, train)
        return {"key": choice.key, "release_ids": list(choice.release_ids)}
    window = train.notes_window_of(run_targets.target_release(data_interval_end, override))
    return {"key": window.key, "release_ids": [r.id for r in window.releases]}


def _window_notes(window: dict[str, Any], audience: Audience):  # the vendor's audience only
    """The notes of the window's releases that reached production (None: none did)."""
    repo, train = repository(), calendar()
    deployed = [r for r in window["release_ids"] if getattr(repo.release(r), "status", None) == ReleaseStatus.DEPLOYED]
    if not deployed:
        return None
    shipped = [c for r in deployed for c in repo.changes_shipped_by(r)]  # carried ones too (the ledger)
    return render_release_notes(release_sections(train, deployed, shipped), audience)


@task
def publish_general_notes(window: dict[str, Any]) -> str:
    """Publish the vendor's general notes on its documentation portal; returns where.
    OEM docs are not touched here: they follow each OEM's instance (oem_delivery)."""
    repo = repository()
    notes = _window_notes(window, Audience.vendor(load_vendor()))
    if notes is None:
        raise AirflowSkipException(f"no release of {window['key']} reached production; nothing to publish")
    page = f"release-notes/{window['key']}"
    location = outbound.publish_page(repo, "ava_docs_portal", page, notes, key=f"general_notes:{window['key']}:vendor")
    repo.record_publication(
        kind="general_notes",
        scope_key=window["key"],
        audience="vendor",
        channel="docs_portal",
        status="published",
        location=location,
    )
    return location
