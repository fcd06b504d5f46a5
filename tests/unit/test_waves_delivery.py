"""Rollout waves in the delivery (docs/waves.md), on both release databases: an earlier
wave's rollback or failed verification halts the release for the later waves, which wait
(told once, white-labelled) until staff resume it; and, over generated histories, no
later wave installs a release an earlier wave rolled back unless staff resumed it."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from release_pipeline.db.schema import metadata
from release_pipeline.delivery_process import DeliveryEnded, DeliveryFailed, DeliveryHalted, DeliveryProcess
from release_pipeline.explain import explain
from release_pipeline.forecast import forecast
from release_pipeline.models import DeliveryStatus, ReleaseStatus
from release_pipeline.notes import Audience
from release_pipeline.release_calendar import ReleaseCalendar
from release_pipeline.reminders import digest_rows, render_digest
from release_pipeline.roadmap import RoadmapConfig
from release_pipeline.signoff import decide
from release_pipeline.vendor import load_vendor
from release_pipeline.waves import halt, halt_of, resume
from tests.builders import INSTALL_DAY, FakeInstance, RecordingOutbox, cut, make_oem

# three OEMs, one per wave; brand names and ids each OEM must never see of the others
OEMS = {
    "acme": {"display_name": "Acme Ltd", "brand_name": "Acme Cloud", "wave": 1},
    "bolt": {"display_name": "Bolt Systems", "brand_name": "Bolt Hub", "wave": 2},
    "cobra": {"display_name": "Cobra Corp", "brand_name": "Cobra Link", "wave": 3},
}
WAVE_TWO_DAY = pendulum.datetime(2026, 12, 5, 10, tz="Europe/Amsterdam").in_timezone("UTC")


class Fleet:
    """acme (wave 1), bolt (wave 2) and cobra (wave 3) run 2026.22 and approved 2026.23 and
    2026.24, both in production; the clock is install day of the cycle 2026.23-2026.24."""

    def __init__(self, repo, calendar, **oem_fields):
        self.repo, self.train, self.now = repo, calendar, INSTALL_DAY
        self.oems = {i: make_oem(id=i, **fields, **oem_fields) for i, fields in OEMS.items()}
        self.instances = {i: FakeInstance() for i in OEMS}
        self.outboxes = {i: RecordingOutbox() for i in OEMS}
        self.runs = 0
        cut(repo, calendar, "2026.22")
        cut(repo, calendar, "2026.23", "CHG-1")
        cut(repo, calendar, "2026.24", "CHG-2", "CHG-3")
        for release_id in ("2026.23", "2026.24"):
            repo.set_release_status(release_id, ReleaseStatus.QA_APPROVED, actor="qa")
            repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
            repo.request_approvals(release_id, list(OEMS))
        for oem_id in OEMS:
            repo.set_installed_version(oem_id, "2026.22")
            for release_id in ("2026.23", "2026.24"):
                decide(repo, oem_id=oem_id, release_id=release_id, decision="approved", actor="x", channel="portal")

    def process(self, oem_id: str, **fields) -> DeliveryProcess:
        return DeliveryProcess(
            repo=self.repo,
            train=self.train,
            oem=self.oems[oem_id],
            instance=self.instances[oem_id],
            outbox=self.outboxes[oem_id],
            clock=lambda: self.now,
            sleep=lambda seconds: None,
            verify_grace=dt.timedelta(0),
            roadmap_config=RoadmapConfig(),
            **fields,
        )

    def plan(self, oem_id: str) -> dict:
        self.runs += 1
        return self.process(oem_id).plan(run_id=f"run-{self.runs}")

    def deliver(self, oem_id: str, outcome: str = "ok") -> str:
        """One delivery, install to verify (and recover): ``ok``, ``unhealthy`` after the
        install (verification fails, rolled back) or ``install_fails`` (rolled back).
        Returns what became of it: installed, rolled_back, postponed or ended."""
        instance = self.instances[oem_id]
        try:
            plan = self.plan(oem_id)
            instance.install_exit = 1 if outcome == "install_fails" else 0
            try:
                log = self.process(oem_id).install(plan)
                instance.healthy = outcome != "unhealthy"
                self.process(oem_id).verify(plan, log)
            except DeliveryFailed:
                with pytest.raises(DeliveryFailed):
                    self.process(oem_id).recover(plan)
                return "rolled_back"
        except DeliveryHalted:
            return "postponed"
        except DeliveryEnded:
            return "ended"
        finally:
            instance.install_exit, instance.healthy = 0, True
        return "installed"

    def installs(self, oem_id: str) -> list[str]:
        return [c for c, _ in self.instances[oem_id].ran if " install " in f" {c} "]

    def told(self, oem_id: str) -> list[tuple[str, str, list[str]]]:
        return [(key, subject, lines) for to, key, subject, lines in self.outboxes[oem_id].sent if to == "oem"]


@pytest.fixture
def fleet(repo, calendar) -> Fleet:
    return Fleet(repo, calendar)


def test_a_later_wave_plans_for_its_own_wave_day(fleet):
    fleet.now = pendulum.datetime(2026, 11, 28, 12, tz="UTC")
    plan = fleet.plan("bolt")
    assert plan["wave"] == 2
    assert pendulum.parse(plan["install_at"]) == WAVE_TWO_DAY
    assert pendulum.parse(plan["settle_at"]) == WAVE_TWO_DAY  # a window open all day
    assert pendulum.parse(fleet.plan("acme")["install_at"]) == INSTALL_DAY


def test_a_rollback_in_wave_one_halts_the_release_for_the_later_waves(fleet, repo):
    assert fleet.deliver("acme", "unhealthy") == "rolled_back"
    standing = halt_of(repo, "2026.24")
    assert (standing.cause, standing.wave, standing.oem_id) == ("verify_failed", 1, "acme")
    halted_alerts = [s for to, key, s, _ in fleet.outboxes["acme"].sent if key.startswith("wave:halted:")]
    assert halted_alerts == ["Release 2026.24 halted for waves after 1"]

    fleet.now = WAVE_TWO_DAY
    assert fleet.deliver("bolt") == "postponed"
    assert fleet.deliver("bolt") == "postponed"  # looked at again: told once
    assert fleet.installs("bolt") == []
    row = repo.delivery("bolt", "2026.24")
    assert row.status == DeliveryStatus.WAITING
    # the portal shows the OEM this line: no cause, no other OEM
    assert row.detail == (
        "postponed (wave 2): 2026.24 halted while a problem is investigated; "
        "installs in the next maintenance window after it is cleared"
    )
    # told under one key (the outbox sends once per key): once per OEM, release, cycle and halt
    ((key, subject, lines),) = {(k, s, tuple(lines)) for k, s, lines in fleet.told("bolt")}
    assert key == f"wave:postponed:bolt:2026.24:{row.cycle_key}:{standing.id}"
    assert subject == "Bolt Hub 2026.24 postponed while a problem is investigated"
    assert lines[-1].startswith("Your instance stays on 2026.22.")
    # white-labelled: nothing of the OEM that rolled back, nor the vendor's name
    for text in (subject, *lines):
        assert not any(word in text.lower() for word in ("acme", "ava", "roll", "verif"))
    # the vendor was alerted once, by the instance that started the halt
    assert not [k for to, k, _, _ in fleet.outboxes["bolt"].sent if to == "vendor"]


def test_an_install_command_that_fails_and_is_rolled_back_halts_as_rolled_back(fleet, repo):
    assert fleet.deliver("acme", "install_fails") == "rolled_back"
    assert halt_of(repo, "2026.24").cause == "rolled_back"


def test_a_delivery_that_installed_nothing_halts_nothing(fleet, repo):
    plan = fleet.plan("acme")
    with pytest.raises(DeliveryFailed, match="nothing was installed"):
        fleet.process("acme").recover(plan)
    assert halt_of(repo, "2026.24") is None


def test_the_same_wave_is_not_held_back(repo, calendar):
    fleet = Fleet(repo, calendar)
    fleet.oems["bolt"] = fleet.oems["bolt"].model_copy(update={"wave": 1})
    assert fleet.deliver("acme", "unhealthy") == "rolled_back"
    assert fleet.deliver("bolt") == "installed"
    assert fleet.deliver("cobra") == "postponed"


def test_after_staff_resume_the_postponed_delivery_installs_in_its_next_window(repo, calendar):
    fleet = Fleet(repo, calendar)
    saturday_nights = {"days": ["sat"], "start": "22:00", "end": "04:00"}
    fleet.oems["bolt"] = make_oem(id="bolt", **OEMS["bolt"], maintenance_window=saturday_nights)
    assert fleet.deliver("acme", "unhealthy") == "rolled_back"
    opens = pendulum.datetime(2026, 12, 5, 22, tz="Europe/Berlin")
    fleet.now = opens.add(minutes=1)
    plan = fleet.plan("bolt")
    with pytest.raises(DeliveryHalted):
        fleet.process("bolt").install(plan)
    resume(repo, "2026.24", reason="root cause found, not in 2026.24", actor="ops", at=fleet.now)
    fleet.now = opens.add(days=1, hours=10)  # the window closed meanwhile: the run waits for the next one
    assert not fleet.oems["bolt"].in_maintenance_window(fleet.now)
    fleet.now = opens.add(days=7, minutes=1)
    fleet.process("bolt").install(plan)
    assert fleet.installs("bolt") == ["ava-ctl install 2026.24"]


def test_a_halt_lasting_past_the_cycle_rolls_the_delivery_over(repo, calendar):
    calendar = ReleaseCalendar(calendar.config.model_copy(update={"freeze_windows": ()}))  # 24 December
    fleet = Fleet(repo, calendar)
    fleet.deliver("acme", "unhealthy")
    plan = fleet.plan("bolt")
    fleet.now = calendar.next_cycle(calendar.delivery_cycle_by_release_id("2026.24")).release.at.in_timezone("UTC")
    with pytest.raises(DeliveryEnded, match="postponed until the cycle ended: 2026.24 halted while a problem"):
        fleet.process("bolt").install(plan)
    assert repo.delivery("bolt", "2026.24").status == DeliveryStatus.SKIPPED
    assert fleet.installs("bolt") == []


def test_a_halt_that_comes_after_the_first_look_is_seen_by_the_last_look(fleet, repo):
    """Halted between the look before the lock and the last look under it: not installed."""
    plan = fleet.plan("bolt")
    steps = fleet.process("bolt")
    first_look = steps.postpone_if_halted

    def halted_right_after(plan):
        first_look(plan)
        halt(repo, "2026.24", cause="regression", detail="reported", actor="oem:acme", at=fleet.now, wave=1)

    steps.postpone_if_halted = halted_right_after
    with pytest.raises(DeliveryHalted):
        steps.install(plan)
    assert fleet.installs("bolt") == []
    assert repo.delivery("bolt", "2026.24").status == DeliveryStatus.WAITING


def test_a_later_release_carrying_the_halted_changes_waits_too(fleet, repo):
    """bolt runs 2026.22; 2026.23 is halted: 2026.24 carries its change, so it waits."""
    halt(repo, "2026.23", cause="regression", detail="reported", actor="oem:acme", at=fleet.now, wave=1)
    assert fleet.deliver("bolt") == "postponed"
    assert fleet.deliver("acme") == "installed"  # the wave that reported it is not held back


def test_a_staff_halt_holds_back_every_wave(fleet, repo):
    halt(repo, "2026.24", cause="staff", detail="customer escalation", actor="ops", at=fleet.now)
    assert fleet.deliver("acme") == "postponed"
    resume(repo, "2026.24", reason="cleared", actor="ops", at=fleet.now)
    assert fleet.deliver("acme") == "installed"


# -- the views: forecast, explain, the digest ------------------------------------------------------------
BEFORE_INSTALL_DAY = pendulum.datetime(2026, 11, 28, 12, tz="UTC")


def test_the_forecast_of_a_later_wave_is_its_wave_day_and_the_delivery_keeps_to_it(fleet, repo):
    ahead = forecast(repo, fleet.train, fleet.oems["bolt"], BEFORE_INSTALL_DAY)
    assert (ahead.wave, ahead.installs, ahead.install_at, ahead.halt) == (2, "2026.24", WAVE_TWO_DAY, None)
    assert ahead.as_json()["wave"] == 2 and ahead.as_json()["halt"] is None
    fleet.now = BEFORE_INSTALL_DAY
    assert pendulum.parse(fleet.plan("bolt")["settle_at"]) == ahead.install_at
    fleet.now = ahead.install_at
    assert fleet.deliver("bolt") == "installed"


def test_views_show_the_halt_to_staff_and_only_a_postponement_to_the_oem(fleet, repo):
    fleet.deliver("acme", "unhealthy")
    ahead = forecast(repo, fleet.train, fleet.oems["bolt"], BEFORE_INSTALL_DAY)
    assert ahead.installs is None and ahead.halt.release_id == "2026.24"
    # the outcome is what reminders and the portal tell the OEM: no cause, no other OEM
    assert ahead.outcome == (
        "2026.24 is postponed while a problem is investigated: it installs in your first maintenance window "
        "after it is cleared; until then the instance stays on 2026.22"
    )
    assert ahead.as_json()["halt"]["oem"] == "acme"  # staff see where it came from
    answer = explain(repo, fleet.train, fleet.oems["bolt"], BEFORE_INSTALL_DAY)
    assert (answer["wave"], answer["halt"]["cause"], answer["installs"]) == (2, "verify_failed", None)
    rows = digest_rows(explain(repo, fleet.train, fleet.oems[o], BEFORE_INSTALL_DAY) for o in ("bolt", "cobra"))
    assert [(r["oem_id"], r["wave"], r["in"]) for r in rows] == [("bolt", 2, False), ("cobra", 3, False)]
    digest = render_digest(rows, Audience.vendor(load_vendor()), dt.date(2026, 11, 28))
    said = "HALTED: 2026.24 halted for waves after 1: verify failed on the instance of acme, by delivery:acme"
    assert f"<td>2 ({said})</td>" in digest.html
    assert "wave 3, HALTED: 2026.24 halted for waves after 1" in digest.markdown


# -- the invariant, over generated histories ------------------------------------------------------------
STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("deliver"), st.sampled_from(sorted(OEMS)), st.sampled_from(["ok", "unhealthy", "install_fails"])
        ),
        st.tuples(st.just("resume")),
    ),
    min_size=1,
    max_size=10,
)


def empty(repo) -> None:
    with repo.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_no_later_wave_installs_a_release_an_earlier_wave_rolled_back_unless_resumed(repo, calendar, steps):
    """Checked from the history itself (the instances' commands, the failures drawn, the
    resumes), not through the product's halt queries."""
    empty(repo)
    fleet = Fleet(repo, calendar)
    history: list[tuple] = []  # ("failed", wave) | ("resumed",) | ("installed", wave)
    for step in steps:
        if step[0] == "resume":
            if halt_of(repo, "2026.24") is not None:
                resume(repo, "2026.24", reason="staff looked", actor="ops", at=fleet.now)
                history.append(("resumed",))
            continue
        _, oem_id, outcome = step
        wave, before = fleet.oems[oem_id].wave, len(fleet.installs(oem_id))
        became = fleet.deliver(oem_id, outcome)
        if len(fleet.installs(oem_id)) > before:  # an install command ran on the instance
            history.append(("installed", wave))
        if became == "rolled_back":
            history.append(("failed", wave))
        fleet.now = fleet.now.add(hours=1)
    for n, event in enumerate(history):
        if event[0] != "installed":
            continue
        since_resume = history[:n][max((i for i, e in enumerate(history[:n]) if e[0] == "resumed"), default=-1) + 1 :]
        assert not any(e[0] == "failed" and e[1] < event[1] for e in since_resume), history
