"""Every outcome of a send to an OEM is a publication row (a failure too), which the
runs' reports read: one helper records them, on SQLite and PostgreSQL."""

import pytest

from release_train_airflow.outbound import recorded_publication

WHERE = {"kind": "release_notes", "scope_key": "2026.24", "audience": "nimbus", "channel": "notification"}


def test_a_send_is_recorded_as_sent_or_as_what_it_reports(repo):
    assert recorded_publication(repo, lambda: None, **WHERE) == "sent"
    (row,) = repo.publications(kind="release_notes")
    assert (row.status, row.location, row.detail) == ("sent", None, None)

    page = {"status": "published", "location": "https://docs.nimbus.example/releases/2026.24"}
    assert recorded_publication(repo, lambda: page, **{**WHERE, "channel": "oem_portal"}) == "published"
    row = next(r for r in repo.publications(kind="release_notes") if r.channel == "oem_portal")
    assert (row.status, row.location) == ("published", page["location"])


def test_a_failure_is_recorded_with_its_error_and_raised_again_then_a_retry_overwrites_it(repo):
    def down():
        raise ConnectionError("notification sink down " + "x" * 3000)

    with pytest.raises(ConnectionError, match="sink down"):
        recorded_publication(repo, down, **WHERE)
    (row,) = repo.publications(kind="release_notes", scope_key="2026.24")
    assert row.status == "failed" and row.detail.startswith("ConnectionError: notification sink down")
    assert len(row.detail) == 2000

    assert recorded_publication(repo, lambda: None, **WHERE) == "sent"
    (row,) = repo.publications(kind="release_notes", scope_key="2026.24")
    assert (row.status, row.detail) == ("sent", None)
