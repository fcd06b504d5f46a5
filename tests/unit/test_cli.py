import shutil

from release_pipeline.cli import main
from tests.conftest import REPO


def test_check_config_passes_on_the_shipped_config(capsys):
    assert main(["check-config"]) == 0
    assert "OEMs: 4 valid (3 enabled), 0 invalid" in capsys.readouterr().out


def test_check_config_fails_and_names_the_problem(tmp_path, capsys):
    shutil.copytree(REPO / "config", tmp_path, dirs_exist_ok=True)
    oems = tmp_path / "oems.yaml"
    oems.write_text(oems.read_text().replace("docs_strategy: oem", "docs_strategy: both", 1))
    assert main(["--config-dir", str(tmp_path), "check-config"]) == 1
    captured = capsys.readouterr()
    assert "OEM 'orbitel', field 'docs_strategy': Input should be 'ava' or 'oem'" in captured.err
    assert "OEMs: 3 valid (2 enabled), 1 invalid" in captured.out


def test_oems_as_json(capsys):
    import json

    assert main(["oems", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["kestrel", "nimbus", "orbitel", "tundra"]


def test_db_upgrade_needs_a_database(monkeypatch, capsys):
    monkeypatch.delenv("RELEASE_TRAIN_DB_URL", raising=False)
    assert main(["db-upgrade"]) == 2
    assert "pass --db-url or set RELEASE_TRAIN_DB_URL" in capsys.readouterr().err


def test_db_upgrade(release_db_url, capsys):
    assert main(["--db-url", release_db_url, "db-upgrade"]) == 0
    assert "release database at revision 0002_held_sends" in capsys.readouterr().out


def test_check_config_refuses_oem_names_the_guard_would_always_hold(tmp_path, capsys):
    shutil.copytree(REPO / "config", tmp_path, dirs_exist_ok=True)
    oems = tmp_path / "oems.yaml"
    text = oems.read_text().replace("brand_name: Kestrel Flow", "brand_name: Kestrel AVA Flow")
    text = text.replace("AVA Studio: Nimbus Studio", "AVA Studio: Orbitel Studio")
    text = text.replace("    acceptance_url: https://staging.orbitlink.example\n", "")
    oems.write_text(text)
    assert main(["--config-dir", str(tmp_path), "check-config"]) == 1
    err = capsys.readouterr().err
    assert "OEM 'kestrel', field 'brand_name': 'Kestrel AVA Flow' contains vendor 'AVA'" in err
    assert "OEM 'nimbus', field 'glossary['AVA Studio']': 'Orbitel Studio' contains OEM orbitel" in err
    assert "warning: config/oems.yaml: OEM 'orbitel': no acceptance_url" in err.replace(str(tmp_path), "config")
