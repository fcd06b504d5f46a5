import pytest

from release_pipeline.errors import DETAIL_LIMIT, error_detail
from release_pipeline.idempotency import perform_once


def test_a_completed_side_effect_is_not_repeated(repo):
    calls = []

    def act(key):
        calls.append(key)
        return {"sent": len(calls)}

    assert perform_once(repo, "notify:x", "notification", act) == (True, {"sent": 1})
    assert perform_once(repo, "notify:x", "notification", act) == (False, {"sent": 1})
    assert calls == ["notify:x"]


def test_a_failed_attempt_is_recorded_and_retried(repo):
    def boom(key):
        raise ConnectionError("portal down")

    with pytest.raises(ConnectionError):
        perform_once(repo, "publish:y", "docs_publication", boom)
    row = repo.side_effect("publish:y")
    assert (row.status, row.result) == ("failed", {"error": "ConnectionError: portal down"})
    assert perform_once(repo, "publish:y", "docs_publication", lambda key: {"ok": True}) == (True, {"ok": True})
    assert repo.side_effect("publish:y").attempts == 2


def test_what_a_failed_attempt_got_done_is_kept_for_the_next(repo):
    """An error's ``ledger_result`` (e.g. the recipients that took a partly refused e-mail)
    is recorded beside the error, for the retry to read."""

    class PartlyDone(OSError):
        ledger_result = {"accepted": ["a@oem.example"]}

    def partly(key):
        raise PartlyDone("b@oem.example refused")

    with pytest.raises(PartlyDone):
        perform_once(repo, "email:z", "email", partly)
    row = repo.side_effect("email:z")
    assert row.result == {"error": "PartlyDone: b@oem.example refused", "accepted": ["a@oem.example"]}


def test_an_error_is_recorded_as_its_type_and_message_cut_to_the_limit():
    assert error_detail(ConnectionError("portal down")) == "ConnectionError: portal down"
    long = error_detail(RuntimeError("x" * 5000))
    assert len(long) == DETAIL_LIMIT and long.startswith("RuntimeError: xxx")
