"""The config make up's demo runs on: the repository's ``config/``, copied into the Airflow
home, with an ``email`` block for each OEM that has none, so the demo's OEMs are e-mailed
(to the simulator's SMTP server; see its mailbox page) instead of posted to the HTTP sink.
The addresses are made from the OEM's own domain (that of its ``docs_url``). The copy is
made afresh at every ``make up``: edit ``config/``, not the copy.

The demo's change source is a real git repository made at every start from the demo
changes (``simulator.demo``) at their merge times: ``git log`` in it shows what each
release takes (docs/change-sources.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from simulator.demo import demo_changes
from simulator.git_history import TYPES_CONFIG, write_history

HEADER = "# written by make up from config/oems.yaml (edit that file, not this copy): OEMs e-mailed\n"


def oem_domain(entry: dict) -> str:
    """``nimbus.example`` for an OEM whose docs live at ``https://docs.nimbus.example``."""
    host = urlsplit(entry.get("docs_url") or entry.get("acceptance_url") or "").hostname
    if host and host.count(".") >= 2:
        return host.split(".", 1)[1]
    return host or f"{entry['id']}.example"


def demo_email(entry: dict) -> dict:
    domain, brand = oem_domain(entry), entry.get("brand_name", entry["id"])
    return {
        "to": [f"releases@{domain}"],
        "cc": [f"qa@{domain}"],
        "from": f"{brand} Releases <no-reply@{domain}>",
        "reply_to": f"{brand} Support <support@{domain}>",
    }


def emailing_config(source: Path, target: Path) -> Path:
    """Copy ``source`` (config/) to ``target`` with every OEM e-mailed; returns ``target``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    oems = yaml.safe_load((target / "oems.yaml").read_text())
    for entry in oems.get("oems") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and "email" not in entry:
            entry["email"] = demo_email(entry)
    (target / "oems.yaml").write_text(HEADER + yaml.safe_dump(oems, sort_keys=False, allow_unicode=True))
    return target


def git_change_source(config: Path, repository: Path) -> Path:
    """Write the demo's platform history to ``repository`` (afresh) and point the config
    copy's change source at it; returns ``repository``."""
    if repository.exists():
        shutil.rmtree(repository)
    write_history(repository, demo_changes())
    vendor = yaml.safe_load((config / "vendor.yaml").read_text())
    vendor["change_source"] = {"kind": "git", "repository": str(repository), "branch": "main", "types": TYPES_CONFIG}
    (config / "vendor.yaml").write_text(
        "# written by make up from config/vendor.yaml: the change source is the demo's git repository\n"
        + yaml.safe_dump(vendor, sort_keys=False, allow_unicode=True)
    )
    return repository
