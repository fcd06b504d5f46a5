"""The production image installs requirements.txt only; test and lint tools live in
requirements-dev.txt (what `make install` installs); constraints.txt pins both alike."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

DEV_TOOLS = {
    "pytest",
    "pytest-xdist",
    "pytest-timeout",
    "hypothesis",
    "time-machine",
    "ruff",
    "playwright",
    "schemathesis",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(\[[a-z0-9,_-]+\])?==(?P<version>\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: not an exact pin (name==version): {raw!r}"
        found[canonical(match["name"])] = match["version"]
    return found


def test_every_pin_is_exact_and_agrees_with_the_constraints():
    constraints = pins(REPO / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for package, version in pins(REPO / name).items():
            assert constraints.get(package) == version, (
                f"{name}: {package}=={version}, constraints.txt: {constraints.get(package)}"
            )


def test_test_and_lint_tools_stay_out_of_the_production_requirements():
    runtime = pins(REPO / "requirements.txt")
    assert not DEV_TOOLS & set(runtime), DEV_TOOLS & set(runtime)
    dev_file = (REPO / "requirements-dev.txt").read_text()
    assert dev_file.count("-r requirements.txt") == 1
    assert set(pins(REPO / "requirements-dev.txt")) >= DEV_TOOLS


def test_the_image_installs_requirements_txt_only_and_make_install_the_dev_file():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert not any("requirements-dev" in line for line in instructions)
    assert "pip install --no-cache-dir -r /opt/release-train/requirements.txt" in dockerfile
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt" in makefile


def test_one_postgresql_driver_family_in_the_runtime_pins():
    runtime = pins(REPO / "requirements.txt")
    assert "psycopg" in runtime
    assert not {"psycopg2", "psycopg2-binary", "asyncpg"} & set(runtime)


def test_runtime_code_imports_no_test_tool_and_no_second_postgresql_driver():
    forbidden = {"pytest", "hypothesis", "time_machine", "playwright", "schemathesis", "ruff", "psycopg2", "asyncpg"}
    for folder in ("dags", "plugins", "include"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    assert name.split(".")[0] not in forbidden, f"{path.relative_to(REPO)} imports {name}"
