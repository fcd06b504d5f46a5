"""The portal under a sign-off policy, in-process on SQLite and PostgreSQL: decisions are
the token's approver's, each change shows its approvals so far and who is missing, and a
token bound to no approver of the policy (or to one removed from it) cannot decide."""

import shutil
import warnings
from pathlib import Path

import pytest

from release_pipeline.registry import load_registry
from release_pipeline.tokens import issue_token
from release_train_airflow.portal import create_app
from tests.builders import TWO_OF_TWO, cut, with_policy

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path):
    copy = tmp_path / "config"
    shutil.copytree(REPO / "config", copy)
    with_policy(copy, "orbitel", TWO_OF_TWO)
    return copy


@pytest.fixture
def portal(repo, calendar, config):
    cut(repo, calendar, "2026.24", "CHG-1", "CHG-2")
    repo.request_approvals("2026.24", ["orbitel"])
    tokens = {
        who: issue_token(repo, oem_id="orbitel", label=f"{who}@orbitel", created_by="test", approver=approver).token
        for who, approver in (("olga", "Olga Berg"), ("pat", "Pat Kim"), ("old", None))
    }
    app = create_app(repo, load_registry=lambda: load_registry(config / "oems.yaml"))

    def client(who: str, application=app) -> TestClient:
        return TestClient(application, headers={"Authorization": f"Bearer {tokens[who]}"})

    return client


def approve_all(client):
    return client.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved"})


def test_each_approver_decides_as_themselves_and_sees_who_is_missing(portal, repo):
    olga = portal("olga")
    me = olga.get("/api/v1/me").json()
    assert (me["approver"], me["signoff_policy"]) == ("Olga Berg (qa)", "2 of Olga Berg (qa), Pat Kim (product)")

    answer = approve_all(olga)
    assert answer.status_code == 201
    release = answer.json()["release"]
    assert release["state"] == "pending" and release["counts"] == {"approved": 0, "rejected": 0, "pending": 2}
    change = release["changes"][0]
    assert [(a["approver"], a["role"]) for a in change["approvals"]] == [("Olga Berg", "qa")]
    assert change["waiting_for"] == "1 more approval of Pat Kim (product)"
    assert approve_all(olga).status_code == 409  # her own decision again

    answer = approve_all(portal("pat"))
    assert answer.status_code == 201 and answer.json()["release"]["state"] == "approved"
    change = answer.json()["release"]["changes"][1]
    assert [a["approver"] for a in change["approvals"]] == ["Olga Berg", "Pat Kim"] and change["waiting_for"] is None
    assert [(e.approver, e.actor) for e in repo.approval_history("orbitel", "CHG-2")] == [
        ("Olga Berg", "olga@orbitel"),
        ("Pat Kim", "pat@orbitel"),
    ]


def test_a_token_bound_to_no_approver_of_the_policy_cannot_decide(portal, repo, config):
    old = portal("old")
    assert old.get("/api/v1/me").json()["approver"] is None
    refused = approve_all(old)
    assert refused.status_code == 403 and "a decision must be one of theirs" in refused.json()["detail"]
    assert old.get("/api/v1/releases/2026.24").status_code == 200  # it still reads

    # Pat leaves the policy: Pat's token no longer decides
    with_policy(config, "orbitel", "    signoff_policy:\n      approvers: [{name: Olga Berg, role: qa}]\n")
    app = create_app(repo, load_registry=lambda: load_registry(config / "oems.yaml"))
    refused = approve_all(portal("pat", app))
    assert refused.status_code == 403 and "'Pat Kim' is not an approver" in refused.json()["detail"]
    assert repo.signoff_record("orbitel", "2026.24") == []
