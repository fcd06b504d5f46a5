"""``release-train wave halt|resume|status`` on both release databases: what is recorded
(who and why), what is printed, and that bad input exits 2 and writes nothing."""

import json
import shutil
from pathlib import Path

import pendulum
import time_machine

from release_pipeline.waves import halt, halt_of
from tests.builders import cut

NOW = pendulum.datetime(2026, 11, 30, 9, tz="UTC")  # before install day of 2026.23-2026.24 (3 December)


def test_staff_halt_and_resume_record_who_and_why(cli, repo, calendar):
    cut(repo, calendar, "2026.24", "CHG-1")
    with time_machine.travel(NOW, tick=False):
        code, out, err = cli("wave", "halt", "2026.24", "--reason", "customer escalation", "--by", "ops.eve")
    assert (code, err) == (0, "")
    assert out == "release 2026.24 halted for every wave (by ops.eve): no OEM installs it until it is resumed\n"
    standing = halt_of(repo, "2026.24")
    assert (standing.cause, standing.actor, standing.detail, standing.wave, standing.at) == (
        "staff",
        "ops.eve",
        "customer escalation",
        0,
        NOW,
    )
    code, out, _ = cli("wave", "halt", "2026.24", "--reason", "again", "--by", "ops.bob")
    assert code == 0 and out.startswith("release 2026.24 is already halted for every wave since 2026-11-30 09:00")
    assert len(repo.wave_events("2026.24")) == 1

    code, out, _ = cli("wave", "resume", "2026.24", "--reason", "fixed in 2026.25", "--by", "ops.bob")
    assert code == 0 and out.startswith("release 2026.24 resumed (by ops.bob; halted since 2026-11-30 09:00, staff)")
    assert halt_of(repo, "2026.24") is None
    assert [(e.event, e.actor, e.detail) for e in repo.wave_events("2026.24")] == [
        ("halted", "ops.eve", "customer escalation"),
        ("resumed", "ops.bob", "fixed in 2026.25"),
    ]


def test_a_staff_halt_widens_an_automatic_one_to_every_wave(cli, repo, calendar):
    cut(repo, calendar, "2026.24", "CHG-1")
    halt(repo, "2026.24", cause="rolled_back", detail="rolled back", actor="delivery:nimbus", at=NOW, wave=1)
    code, out, _ = cli("wave", "halt", "2026.24", "--reason", "stop it everywhere", "--by", "ops.eve")
    assert code == 0
    assert out == "release 2026.24 was halted for waves after 1 (rolled_back); now for every wave (by ops.eve)\n"
    assert halt_of(repo, "2026.24").wave == 0


def test_bad_wave_commands_exit_2_and_write_nothing(cli, repo, calendar):
    cut(repo, calendar, "2026.24", "CHG-1")
    code, out, err = cli("wave", "resume", "2026.24", "--reason", "x", "--by", "ops")
    assert (code, out) == (2, "") and "2026.24 is not halted" in err
    code, _, err = cli("wave", "halt", "2026.99", "--reason", "x", "--by", "ops")
    assert code == 2 and "release 2026.99 is not recorded" in err
    code, _, err = cli("wave", "halt", "24", "--reason", "x", "--by", "ops")
    assert code == 2 and "a release id like 2026.24" in err
    code, _, err = cli("wave", "halt", "2026.24", "--reason", " ", "--by", "ops")
    assert code == 2 and "--reason" in err
    code, _, err = cli("wave", "halt", "2026.24", "--reason", "x", "--by", " ")
    assert code == 2 and "--by" in err
    assert repo.wave_events() == []


def test_wave_status_shows_each_oems_wave_and_the_halts(cli, repo, calendar, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(Path(__file__).parents[2] / "config", config)
    oems = config / "oems.yaml"
    oems.write_text(oems.read_text().replace("  - id: orbitel\n", "  - id: orbitel\n    wave: 2\n", 1))
    cut(repo, calendar, "2026.24", "CHG-1")
    halt(repo, "2026.24", cause="verify_failed", detail="health 503", actor="delivery:nimbus", at=NOW, wave=1,
         oem_id="nimbus")  # fmt: skip
    with time_machine.travel(NOW, tick=False):
        code, out, _ = cli("--config-dir", str(config), "wave", "status", "--release", "2026.24")
        assert code == 0
        assert "waves of the cycle 2026.23-2026.24 (wave_gap_days 2):" in out
        assert "HALTED 2026.24 halted for waves after 1: verify failed on the instance of nimbus (health 503)" in out
        assert "halted (verify_failed) by delivery:nimbus: health 503" in out
        code, out, _ = cli("--config-dir", str(config), "wave", "status", "--json")
    answer = json.loads(out)
    by_oem = {o["oem"]: o for o in answer["oems"]}
    assert by_oem["nimbus"]["wave"] == 1 and by_oem["orbitel"]["wave"] == 2
    assert by_oem["nimbus"]["installs_from"] == "2026-12-03T10:00:00+01:00"  # a window open all day
    assert by_oem["orbitel"]["installs_from"] == "2026-12-05T22:00:00-05:00"  # Saturday night, New York
    assert [h["release"] for h in answer["halts"]] == ["2026.24"]


def test_check_config_names_an_oem_whose_wave_would_overlap_the_next_cycle(tmp_path, capsys):
    """Install day is 7 days after the cycle's release, the next cycle's release 21 days
    after install day: wave 4 with 7 days between waves would start on it."""
    from release_pipeline.cli import main

    shutil.copytree(Path(__file__).parents[2] / "config", tmp_path, dirs_exist_ok=True)
    oems = tmp_path / "oems.yaml"
    oems.write_text(oems.read_text().replace("  - id: kestrel\n", "  - id: kestrel\n    wave: 4\n", 1))
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text(calendar.read_text().replace("wave_gap_days: 2", "wave_gap_days: 7"))
    assert main(["--config-dir", str(tmp_path), "check-config"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: OEM 'kestrel': field 'wave': wave 4 starts 21 days after install day (3 x wave_gap_days 7), "
        "not before the next cycle's release 21 days after it; lower its wave or the calendar's wave_gap_days"
    ) in err
    assert "nimbus" not in err
    calendar.write_text(calendar.read_text().replace("wave_gap_days: 7", "wave_gap_days: 6"))
    assert main(["--config-dir", str(tmp_path), "check-config"]) == 0


def test_forecast_and_explain_show_the_wave_and_the_halt(cli, repo, calendar):
    cut(repo, calendar, "2026.22")
    cut(repo, calendar, "2026.24", "CHG-1")
    repo.set_release_status("2026.24", "deployed", actor="test")
    repo.set_installed_version("nimbus", "2026.22")
    repo.request_approvals("2026.24", ["nimbus"])
    repo.record_decision(oem_id="nimbus", change_id="CHG-1", decision="approved", actor="n", channel="portal")
    halt(repo, "2026.24", cause="staff", detail="customer escalation", actor="ops.eve", at=NOW)
    with time_machine.travel(NOW, tick=False):
        code, out, _ = cli("forecast", "--oem", "nimbus")
        assert code == 0
        assert out.startswith("nimbus: cycle 2026.23-2026.24, wave 1, runs 2026.22\n  installs: nothing at ")
        assert "  HALTED: 2026.24 halted for every wave: staff (customer escalation)\n" in out
        assert "if nothing changes: 2026.24 is postponed while a problem is investigated" in out
        code, out, _ = cli("explain", "nimbus")
        assert code == 0
        assert "rollout wave 1\nHALTED: 2026.24 (staff, by ops.eve): customer escalation\n" in out
        code, out, _ = cli("explain", "nimbus", "--json")
    answer = json.loads(out)
    assert (answer["wave"], answer["halt"]["cause"], answer["halt"]["by"]) == (1, "staff", "ops.eve")
