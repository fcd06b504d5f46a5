"""Each folder keeps to its job (see ARCHITECTURE.md)."""

import ast
import subprocess
import sys

from tests.conftest import REPO

DOMAIN = REPO / "include" / "release_pipeline"
PRODUCT = ("dags", "plugins", "include")  # what production runs; dev/ is not shipped


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def python_files(*folders: str):
    for folder in folders:
        yield from (REPO / folder).rglob("*.py")


def product_nodes():
    """Each ``(path, node)`` of the syntax trees of the code production runs."""
    for path in python_files(*PRODUCT):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            yield path, node


def imports_of(paths, forbidden: set[str]) -> list[str]:
    """Each ``path: module`` among ``paths`` that imports a package of ``forbidden``."""
    return [
        f"{path.relative_to(REPO)}: {module}"
        for path in paths
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden
    ]


def test_the_domain_never_imports_airflow_or_the_simulator():
    assert imports_of(DOMAIN.rglob("*.py"), {"airflow", "simulator", "devstack", "release_train_airflow"}) == []


def test_the_product_never_imports_the_simulator_or_the_local_stack():
    """dags/, plugins/ and include/ are what production runs; dev/ is not shipped there."""
    assert imports_of(python_files(*PRODUCT), {"simulator", "devstack"}) == []


def test_task_code_logs_instead_of_printing():
    """What a task says goes to its log through ``logging``; only the CLI prints."""
    offenders = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path, node in product_nodes()
        if path != DOMAIN / "cli.py"
        and isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert offenders == []


def test_product_waits_never_use_asyncio_wait_for():
    """On Python 3.11 ``asyncio.wait_for`` swallows a cancel that arrives as its awaitable
    finishes, and a trigger whose cancel is lost runs on forever in the triggerer; bounded
    waits go through ``asyncio.timeout`` (``gate_poller.wait_at_most``)."""
    offenders = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path, node in product_nodes()
        if isinstance(node, ast.Attribute)
        and node.attr == "wait_for"
        and isinstance(node.value, ast.Name)
        and node.value.id == "asyncio"
    ]
    assert offenders == []


def test_the_domain_imports_in_a_fresh_interpreter_without_airflow():
    code = (
        "import sys, pkgutil, importlib, release_pipeline\n"
        "for m in pkgutil.walk_packages(release_pipeline.__path__, 'release_pipeline.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "assert not [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')], 'airflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "include")})


def test_only_registration_modules_are_scanned_as_plugins():
    """Airflow imports every .py under plugins/ by bare name; the package must be ignored."""
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    scanned = {
        p.rsplit("/", 1)[-1]
        for p in find_path_from_directory(str(REPO / "plugins"), ".airflowignore")
        if p.endswith(".py")
    }
    assert scanned == {"release_train_plugin.py"}


def test_dag_files_hold_no_domain_logic():
    """DAG files wire tasks defined in the plugins; a long DAG file is a sign that logic
    belongs elsewhere (the longest, oem_delivery.py, has 97 non-blank lines)."""
    for path in (REPO / "dags").glob("*.py"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        assert len(lines) <= 100, f"{path.name} has {len(lines)} lines"


def test_test_modules_share_helpers_through_builders_not_each_other():
    """A helper two test modules need lives in tests/builders.py."""
    offenders = [
        f"{path.relative_to(REPO)}: {node.module}"
        for path in python_files("tests")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert offenders == []
