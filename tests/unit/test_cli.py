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


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"


def test_check_config_fails_naming_each_oem_ssh_connection_without_a_pinned_host_key(tmp_path, capsys):
    import json

    connections = {
        "oem_kestrel_ssh": {"conn_type": "ssh", "host": "k.example", "extra": {"host_key": ED25519}},
        "oem_nimbus_ssh": {"conn_type": "ssh", "host": "n.example", "extra": {"key_file": "/keys/nimbus"}},
    }
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(connections))
    assert main(["check-config", "--connections", str(path)]) == 1
    captured = capsys.readouterr()
    assert "error: OEM 'nimbus': connection 'oem_nimbus_ssh': pins no host key" in captured.err
    assert "error: OEM 'orbitel': connection 'oem_orbitel_ssh' is not defined" in captured.err
    assert "kestrel" not in captured.err and "tundra" not in captured.err  # pinned; disabled
    assert "SSH host keys: 1 of 3 enabled OEMs pinned" in captured.out

    connections["oem_nimbus_ssh"]["extra"]["host_key"] = ED25519
    connections["oem_orbitel_ssh"] = connections["oem_kestrel_ssh"]
    path.write_text(json.dumps(connections))
    assert main(["check-config", "--connections", str(path)]) == 0
    assert "SSH host keys: 3 of 3 enabled OEMs pinned" in capsys.readouterr().out


def test_check_config_checks_the_airflow_conn_variables_of_make_up(monkeypatch, capsys):
    import json

    for oem in ("kestrel", "nimbus", "orbitel"):
        extra = {"host_key": ED25519} if oem != "orbitel" else {"no_host_key_check": "true"}
        monkeypatch.setenv(f"AIRFLOW_CONN_OEM_{oem.upper()}_SSH", json.dumps({"conn_type": "ssh", "extra": extra}))
    assert main(["check-config", "--connections-env"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: OEM 'orbitel': connection 'oem_orbitel_ssh': extra 'no_host_key_check' is true; "
        "the host key must be checked (set it to false or remove it)"
    )


def test_check_config_refuses_an_unreadable_connections_file(tmp_path, capsys):
    (tmp_path / "c.json").write_text("{nope")
    assert main(["check-config", "--connections", str(tmp_path / "c.json")]) == 2
    assert "error: --connections" in capsys.readouterr().err


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


def config_with_portal_url(tmp_path, portal_url: str):
    shutil.copytree(REPO / "config", tmp_path, dirs_exist_ok=True)
    vendor = tmp_path / "vendor.yaml"
    shipped = "portal_url: http://localhost:8080/oem-portal/"
    assert shipped in vendor.read_text()
    vendor.write_text(vendor.read_text().replace(shipped, f"portal_url: {portal_url}"))
    return tmp_path


def test_check_config_in_production_refuses_make_ups_plain_http_localhost_portal_url(capsys):
    from release_pipeline.cli import UNFIT_FOR_PRODUCTION

    assert main(["check-config"]) == 0  # make up's localhost default stays valid for development
    capsys.readouterr()
    assert main(["check-config", "--production"]) == UNFIT_FOR_PRODUCTION == 3
    err = capsys.readouterr().err
    assert (
        "error: production: config/vendor.yaml, field 'portal_url': 'http://localhost:8080/oem-portal/' is not https"
        in err
    )
    assert "e.g. https://portal.example.com/oem-portal/" in err


def test_check_config_in_production_wants_a_public_https_portal_url(tmp_path, capsys):
    for url, status, said in [
        ("http://portal.example.com/oem-portal/", 3, "is not https"),
        ("https://localhost/oem-portal/", 3, "is this machine, which OEMs cannot reach"),
        ("https://127.0.0.1:8443/oem-portal/", 3, "is this machine"),
        ("https://portal.example.com/oem-portal/", 0, ""),
    ]:
        config = config_with_portal_url(tmp_path, url)
        assert main(["--config-dir", str(config), "check-config", "--production"]) == status, url
        err = capsys.readouterr().err
        assert said in err and ("field 'portal_url'" in err) == bool(said), url


def test_check_config_refuses_an_oem_brand_that_contains_another_oems_name(tmp_path, capsys):
    """Issue 24: OEM kestrel branded "Nimbus Plus" overlaps OEM nimbus; the check reads each
    field without the OEM's own names, so the brand does not hide itself."""
    shutil.copytree(REPO / "config", tmp_path, dirs_exist_ok=True)
    oems = tmp_path / "oems.yaml"
    oems.write_text(oems.read_text().replace("brand_name: Kestrel Flow", "brand_name: Nimbus Plus"))
    assert main(["--config-dir", str(tmp_path), "check-config"]) == 1
    err = capsys.readouterr().err
    assert "OEM 'kestrel', field 'brand_name': 'Nimbus Plus' contains OEM nimbus 'Nimbus'" in err
