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
    from alembic.script import ScriptDirectory

    from release_pipeline.db import connect
    from release_pipeline.db.migrate import alembic_config

    with connect("sqlite://").connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    assert main(["--db-url", release_db_url, "db-upgrade"]) == 0
    assert capsys.readouterr().out == f"release database at revision {head}\n"
