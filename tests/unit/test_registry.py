import json
import textwrap

import pendulum
import pytest

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.registry import MaintenanceWindow, OemCommands, load_registry

GOOD = """\
  - id: acme
    display_name: Acme Corp
    brand_name: Acme Integrate
    timezone: Europe/Berlin
    tier: gold
    docs_strategy: ava
    feedback_cadence_weeks: 2
    maintenance_window: {days: [sat], start: "22:00", end: "04:00"}
"""


def entry(text: str) -> str:
    """An OEM entry written flush left, indented as an item of the ``oems:`` list."""
    return textwrap.indent(textwrap.dedent(text), "  ")


def write(tmp_path, body: str):
    path = tmp_path / "oems.yaml"
    path.write_text("oems:\n" + body)
    return path


def test_the_shipped_registry_is_valid_and_varied():
    registry = load_registry()
    assert registry.errors == []
    assert len(registry.enabled) >= 3
    assert {o.docs_strategy for o in registry.enabled} == {"ava", "oem"}
    assert len({o.feedback_cadence_weeks for o in registry.enabled}) >= 3
    assert list(registry.oems) == sorted(registry.oems)


def test_defaults_derive_connection_ids_from_the_oem_id(tmp_path):
    oem = load_registry(write(tmp_path, GOOD)).get("acme")
    assert oem.connections.model_dump() == {
        "ssh": "oem_acme_ssh",
        "health": "oem_acme_health",
        "docs": "oem_acme_docs",
        "notify": "oem_acme_notify",
    }
    assert oem.commands.render("install", "2026.24") == "ava-ctl install 2026.24"


def test_one_broken_oem_is_reported_and_the_others_survive(tmp_path):
    broken = GOOD + entry("""\
      - id: globex
        display_name: Globex
        brand_name: Globex Hub
        timezone: Europe/Berln
        tier: platinum
        docs_strategy: ava
        feedback_cadence_weeks: 2
        maintenance_window: {days: [sat], start: "22:00", end: "04:00"}
        conections: {ssh: x}
    """)
    registry = load_registry(write(tmp_path, broken))
    assert list(registry.oems) == ["acme"]
    messages = [str(e) for e in registry.errors]
    assert len(messages) == 3, messages
    timezone, tier, extra = sorted(messages, key=lambda m: int(m.split(":")[1]))
    assert timezone.endswith(
        "oems.yaml:13: OEM 'globex', field 'timezone': 'Europe/Berln' is not a known IANA timezone "
        "(did you mean 'Europe/Berlin'?) (got 'Europe/Berln')"
    )
    assert ":14: OEM 'globex', field 'tier': Input should be 'gold', 'silver' or 'bronze'" in tier
    assert ":18: OEM 'globex', field 'conections': unknown field (did you mean 'connections'?)" in extra
    with pytest.raises(KeyError, match="globex.*invalid"):
        registry.get("globex")


def test_entries_without_an_id_and_duplicates_are_named(tmp_path):
    registry = load_registry(write(tmp_path, GOOD + GOOD + "  - display_name: Nameless\n"))
    messages = [str(e) for e in registry.errors]
    assert any(":10: OEM 'acme', field 'id': duplicate OEM id" in m for m in messages), messages
    assert any("OEM entry #3, field 'id': is required but missing" in m for m in messages), messages
    assert list(registry.oems) == ["acme"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("install", "ava-ctl install", "must contain {release}"),
        ("install", "ava-ctl install {version}", "unknown placeholder {version}"),
        ("version", "ava-ctl version {release}", "it takes no placeholders"),
    ],
)
def test_command_templates_are_checked(tmp_path, field, value, expected):
    body = GOOD + f"    commands: {{{field}: '{value}'}}\n"
    errors = [str(e) for e in load_registry(write(tmp_path, body)).errors]
    assert len(errors) == 1 and f"field 'commands.{field}'" in errors[0] and expected in errors[0], errors


def test_rendered_commands_refuse_anything_but_a_release_id():
    with pytest.raises(ValueError, match="not a release id"):
        OemCommands().render("install", "2026.24; rm -rf /")


def test_file_level_problems_raise_with_the_line(tmp_path):
    path = tmp_path / "oems.yaml"
    path.write_text("oems:\n  - id: acme\n    tier: [gold\n")
    with pytest.raises(InvalidConfig, match=r"oems.yaml:\d+: not valid YAML"):
        load_registry(path)
    path.write_text("oem:\n  - id: acme\n")
    with pytest.raises(InvalidConfig, match="expected a top-level 'oems:' list"):
        load_registry(path)


def test_maintenance_window_across_midnight_and_dst():
    window = MaintenanceWindow(days=["sat"], start="22:00", end="04:00")
    tz = "Europe/Berlin"
    saturday_late = pendulum.datetime(2026, 3, 28, 23, tz=tz)
    sunday_early = pendulum.datetime(2026, 3, 29, 3, 30, tz=tz)  # DST starts at 02:00 that night
    assert window.contains(saturday_late, tz)
    assert window.contains(sunday_early, tz)
    assert not window.contains(pendulum.datetime(2026, 3, 29, 4, 0, tz=tz), tz)
    assert not window.contains(pendulum.datetime(2026, 3, 28, 21, 59, tz=tz), tz)
    wednesday = pendulum.datetime(2026, 3, 25, 12, tz=tz)
    assert window.next_opening(wednesday, tz) == pendulum.datetime(2026, 3, 28, 22, tz=tz)
    assert window.next_opening(saturday_late, tz) == saturday_late
    # the window a moment falls in (the install calendar's event), DST night included
    opens, closes = pendulum.datetime(2026, 3, 28, 22, tz=tz), pendulum.datetime(2026, 3, 29, 4, tz=tz)
    assert window.window_around(sunday_early, tz) == window.window_around(opens, tz) == (opens, closes)
    assert closes - opens == pendulum.duration(hours=5)
    with pytest.raises(ValueError, match="outside the maintenance window"):
        window.window_around(wednesday, tz)


def test_always_open_window():
    window = MaintenanceWindow(start="00:00", end="00:00")
    assert window.contains(pendulum.datetime(2026, 6, 1, 13, 37), "Asia/Tokyo")


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"host_key": ED25519}, None),
        (json.dumps({"host_key": ED25519, "no_host_key_check": "false"}), None),
        (None, "pins no host key; set its `host_key` extra"),
        ({"key_file": "/k"}, "pins no host key"),
        ({"host_key": "  "}, "pins no host key"),
        ({"host_key": ED25519, "no_host_key_check": True}, "extra 'no_host_key_check' is true"),
        ({"host_key": ED25519, "allow_host_key_change": "True"}, "extra 'allow_host_key_change' is true"),
        ({"host_key": ED25519.split()[1]}, "extra 'host_key' is not '<type> <base64 key>'"),
        ({"host_key": "ssh-rsa " + ED25519.split()[1]}, "is not a valid ssh-rsa public key"),
        ({"host_key": "ssh-ed25519 AAAA..."}, "is not a valid ssh-ed25519 public key"),
        ("{not json", "its extra is not valid JSON"),
    ],
)
def test_an_oem_ssh_connection_must_pin_a_valid_host_key(extra, problem):
    from release_pipeline.registry import ssh_host_key_problem

    oem = load_registry().get("nimbus")
    found = ssh_host_key_problem(oem, extra)
    if problem is None:
        assert found is None
    else:
        assert found.startswith("OEM 'nimbus': connection 'oem_nimbus_ssh'") and problem in found


def test_white_label_fields_default_so_old_entries_stay_valid(tmp_path):
    oem = load_registry(write(tmp_path, GOOD)).get("acme")
    assert (oem.acceptance_url, oem.docs_url, oem.glossary, oem.hosts) == (None, None, {}, ())


def test_white_label_fields_are_validated_where_they_stand(tmp_path):
    body = GOOD + "    acceptance_url: acceptance.acme.example\n    glossary: {'--': Acme Studio, AVA Studio: ''}\n"
    messages = sorted(str(e) for e in load_registry(write(tmp_path, body)).errors)
    assert len(messages) == 2, messages
    assert ":10: OEM 'acme', field 'acceptance_url': 'acceptance.acme.example' is not an absolute" in messages[0]
    assert ":11: OEM 'acme', field 'glossary': glossary term '--' needs a letter or digit" in messages[1]
    oem_body = GOOD + "    acceptance_url: https://acceptance.acme.example/\n    glossary: {AVA Studio: Acme Studio}\n"
    oem = load_registry(write(tmp_path, oem_body)).get("acme")
    assert (oem.acceptance_url, oem.hosts, oem.glossary) == (
        "https://acceptance.acme.example",
        ("acceptance.acme.example",),
        {"AVA Studio": "Acme Studio"},
    )
