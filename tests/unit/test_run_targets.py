"""What a run with no parameters acts on, and what a wait may still expect
(``release_pipeline.run_targets``)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.models import ReleaseStatus
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar
from release_pipeline.run_targets import (
    NEVER_CUT,
    SETTLED,
    NothingToActOn,
    never_cut,
    newest_settled_window,
    release_due,
    settled_status,
    unsettled,
    window_is_done,
)

TRAIN = ReleaseCalendar(CalendarConfig(timezone="Europe/Amsterdam", anchor="2026-01-08", release_time="10:00"))
DEPLOYED, CUT, REJECTED = ReleaseStatus.DEPLOYED, ReleaseStatus.CUT, ReleaseStatus.QA_REJECTED


# 2026.24's cut is Thursday 26 November 2026 10:00 in Amsterdam; 2026.25 two weeks later
AFTER_24 = TRAIN.release_by_id("2026.24").at.add(days=3)


def test_a_manual_cut_takes_the_release_due_now_when_it_is_not_recorded():
    """The issue's case: the baseline is 2026.22, 2026.23 was never cut: 2026.24 is due."""
    choice = release_due(TRAIN, AFTER_24, {"2026.22": DEPLOYED}, baselines={"2026.22"})
    assert choice.key == "2026.24"
    assert "not recorded yet: cut with every change merged since the cut of 2026.22" in choice.reason


def test_a_manual_cut_resumes_the_release_due_when_it_is_not_settled():
    choice = release_due(TRAIN, AFTER_24, {"2026.24": ReleaseStatus.QA_APPROVED})
    assert choice.key == "2026.24" and "not settled yet: resumed as recorded" in choice.reason


def test_a_manual_cut_reopens_the_sign_off_of_the_release_due_in_production():
    choice = release_due(TRAIN, AFTER_24, {"2026.24": DEPLOYED})
    assert choice.key == "2026.24" and "sign-off is (re)opened, nothing is recorded again" in choice.reason


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (REJECTED, "settled (qa_rejected) and is never recorded again; its changes are carried into the next cut"),
        (ReleaseStatus.EMPTY, "settled (empty) and is never recorded again"),
        (DEPLOYED, "the baseline the instances started on"),
    ],
)
def test_a_manual_cut_of_a_settled_release_ends_at_once_naming_the_next(status, said):
    with pytest.raises(NothingToActOn, match=r"2026.25, is cut Thu 10 Dec 2026 10:00 \(Europe/Amsterdam\)") as ended:
        release_due(TRAIN, AFTER_24, {"2026.24": status}, baselines={"2026.24"} if status == DEPLOYED else ())
    assert said in str(ended.value)


def test_nothing_in_production_is_nothing_to_act_on():
    with pytest.raises(NothingToActOn):
        newest_settled_window(TRAIN, {})


def test_what_a_run_acts_on_is_said_in_full():
    """The reasons and refusals word for word: they are what the task log and the
    operator read (and ``make mutants`` changes their words)."""
    assert release_due(TRAIN, AFTER_24, {"2026.22": DEPLOYED}, baselines={"2026.22"}).reason == (
        "2026.24 is due (cut Thu 26 Nov 2026 10:00 (Europe/Amsterdam)), not recorded yet: cut with every change "
        "merged since the cut of 2026.22"
    )
    with pytest.raises(NothingToActOn) as refused:
        release_due(TRAIN, AFTER_24, {"2026.24": REJECTED})
    assert str(refused.value) == (
        "the release due now, 2026.24, is settled (qa_rejected) and is never recorded again; its changes are "
        "carried into the next cut; the next release, 2026.25, is cut Thu 10 Dec 2026 10:00 (Europe/Amsterdam)"
    )
    nothing = "no release has reached production yet (1 release(s) recorded, none deployed)"
    with pytest.raises(NothingToActOn) as refused:
        newest_settled_window(TRAIN, {"2026.24": CUT})
    assert (
        str(refused.value) == f"{nothing}: no window has notes to publish; give a release id to publish another window"
    )
    settled = "2026.21-2026.22 is the newest window whose releases are settled (2026.21 deployed, 2026.22 deployed)"
    assert newest_settled_window(TRAIN, {"2026.21": DEPLOYED, "2026.22": DEPLOYED}).reason == settled
    statuses = {"2026.21": DEPLOYED, "2026.22": DEPLOYED, "2026.23": CUT, "2026.25": CUT}
    assert newest_settled_window(TRAIN, statuses).reason == (
        f"{settled}; newer, not settled: 2026.25-2026.26 (2026.25 cut, 2026.26 not cut yet); "
        "2026.23-2026.24 (2026.23 cut, 2026.24 never cut)"
    )


def test_no_window_settled_names_every_window_from_the_newest_to_the_oldest_in_production():
    with pytest.raises(NothingToActOn) as refused:
        newest_settled_window(TRAIN, {"2026.21": DEPLOYED, "2026.22": CUT, "2026.23": DEPLOYED, "2026.24": CUT})
    assert str(refused.value) == (
        "no notes window is settled with a release in production: 2026.23-2026.24 (2026.23 deployed, 2026.24 cut); "
        "2026.21-2026.22 (2026.21 deployed, 2026.22 cut)"
    )


def test_the_issue_case_earlier_releases_missing_picks_the_window_in_production():
    """2026.23 and 2026.24 in production, 2026.21 and 2026.22 never cut."""
    choice = newest_settled_window(TRAIN, {"2026.23": DEPLOYED, "2026.24": DEPLOYED})
    assert (choice.key, choice.release_ids) == ("2026.23-2026.24", ("2026.23", "2026.24"))
    assert "newest window whose releases are settled (2026.23 deployed, 2026.24 deployed)" in choice.reason


def test_a_window_still_in_qa_is_passed_over_for_the_settled_one_before_it():
    statuses = {"2026.21": DEPLOYED, "2026.22": REJECTED, "2026.23": DEPLOYED, "2026.24": CUT}
    choice = newest_settled_window(TRAIN, statuses)
    assert choice.key == "2026.21-2026.22"
    assert "newer, not settled: 2026.23-2026.24 (2026.23 deployed, 2026.24 cut)" in choice.reason


def test_a_window_with_nothing_in_production_is_not_chosen():
    statuses = {"2026.21": DEPLOYED, "2026.22": DEPLOYED, "2026.23": REJECTED, "2026.24": ReleaseStatus.EMPTY}
    assert newest_settled_window(TRAIN, statuses).key == "2026.21-2026.22"


def test_a_window_settled_only_by_a_release_never_cut_counts():
    choice = newest_settled_window(TRAIN, {"2026.22": DEPLOYED, "2026.23": CUT})
    assert choice.key == "2026.21-2026.22" and "2026.21 never cut" in choice.reason


def test_no_window_settled_names_what_it_waits_for():
    with pytest.raises(NothingToActOn, match=r"2026.23-2026.24 \(2026.23 deployed, 2026.24 not cut yet\)"):
        newest_settled_window(TRAIN, {"2026.23": DEPLOYED})


def test_a_release_is_never_cut_only_once_a_later_one_is_recorded():
    assert not never_cut("2026.24", {"2026.23": DEPLOYED})  # its moment may not have come
    assert never_cut("2026.24", {"2026.25": CUT})
    assert not never_cut("2026.24", {"2026.24": CUT, "2026.25": CUT})
    assert settled_status("2026.24", {"2026.25": CUT}) == NEVER_CUT
    assert settled_status("2026.24", {"2026.24": CUT}) is None
    assert unsettled(["2026.23", "2026.24", "2026.25"], {"2026.24": DEPLOYED, "2026.25": CUT}) == ["2026.25"]


# -- properties, over any state of the train ---------------------------------------------------
IDS = [TRAIN.release(i).id for i in range(20, 32)]
STATUS = st.sampled_from([*ReleaseStatus])
TRAIN_STATES = st.dictionaries(st.sampled_from(IDS), STATUS, max_size=len(IDS))


@given(TRAIN_STATES, st.integers(0, 30 * 24), st.sets(st.sampled_from(IDS)))
def test_a_manual_cut_never_records_a_settled_release_again_nor_cuts_behind_the_train(statuses, hours, baselines):
    now = TRAIN.release_by_id(IDS[0]).at.add(hours=hours * 7)
    due = TRAIN.release_at(now)
    try:
        choice = release_due(TRAIN, now, statuses, baselines=baselines)
    except NothingToActOn:
        assert due.id in statuses or any(r > due.id for r in statuses)
        return
    assert choice.key == due.id  # the release due now, never an older one
    assert not any(r > choice.key for r in statuses)
    status = statuses.get(choice.key)
    assert status is None or status not in SETTLED or (status == DEPLOYED and choice.key not in baselines)


@given(TRAIN_STATES)
def test_the_window_chosen_is_settled_in_production_and_no_newer_one_is(statuses):
    try:
        choice = newest_settled_window(TRAIN, statuses)
    except NothingToActOn:
        windows = {TRAIN.notes_window_of(TRAIN.release_by_id(r)).index for r in statuses}
        assert not any(window_is_done(TRAIN.notes_window(i), statuses) for i in windows)
        return
    window = TRAIN.notes_window_of(TRAIN.release_by_id(choice.release_ids[0]))
    assert window.key == choice.key and window_is_done(window, statuses)
    assert all(settled_status(r, statuses) is not None for r in choice.release_ids)
    newest = TRAIN.notes_window_of(TRAIN.release_by_id(max(statuses))).index
    assert not any(window_is_done(TRAIN.notes_window(i), statuses) for i in range(window.index + 1, newest + 1))


@given(TRAIN_STATES, st.sampled_from(IDS))
def test_a_wait_never_waits_for_a_settled_or_passed_over_release(statuses, release_id):
    waiting = unsettled([release_id], statuses) == [release_id]
    recorded_final = statuses.get(release_id) in SETTLED
    passed_over = release_id not in statuses and any(r > release_id for r in statuses)
    assert waiting == (not recorded_final and not passed_over)
