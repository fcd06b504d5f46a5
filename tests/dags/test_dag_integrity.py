"""Every DAG file parses cheaply and cleanly, and every DAG follows the house rules."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import warnings
from contextlib import contextmanager

import pytest

from release_train_airflow.dag_defaults import OWNER, is_known_tag
from tests.conftest import REPO

DAGS = REPO / "dags"


class ParseTimeIO(AssertionError):
    pass


@contextmanager
def no_io_at_parse_time(monkeypatch):
    """Fail any network, database, connection or variable access while parsing."""

    def refuse(what):
        def _refuse(*args, **kwargs):
            raise ParseTimeIO(f"{what} at DAG parse time")

        return _refuse

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse("network connection"))
        patch.setattr(socket, "create_connection", refuse("network connection"))
        patch.setattr(sqlite3, "connect", refuse("SQLite connection"))
        import psycopg
        import psycopg2

        patch.setattr(psycopg2, "connect", refuse("PostgreSQL connection"))
        patch.setattr(psycopg.Connection, "connect", refuse("PostgreSQL connection"))
        patch.setattr(psycopg.AsyncConnection, "connect", refuse("PostgreSQL connection"))
        from airflow.sdk import BaseHook, Variable

        patch.setattr(BaseHook, "get_connection", refuse("Airflow connection lookup"))
        patch.setattr(Variable, "get", refuse("Airflow Variable lookup"))
        yield


def parse(monkeypatch, folder=DAGS):
    from airflow.dag_processing.dagbag import DagBag

    with no_io_at_parse_time(monkeypatch), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(folder))
    return bag, caught


@pytest.fixture(scope="module")
def dagbag():
    monkeypatch = pytest.MonkeyPatch()
    try:
        yield parse(monkeypatch)
    finally:
        monkeypatch.undo()


def test_every_dag_file_imports_without_errors_or_io(dagbag):
    bag, _ = dagbag
    assert bag.import_errors == {}
    assert bag.dags, "no DAGs found"


def test_no_deprecation_warnings_from_our_code(dagbag):
    _, caught = dagbag
    ours = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning | FutureWarning)
        or "Deprecat" in type(w.message).__name__
    ]
    ours = [w for w in ours if str(REPO) in w and "/.venv/" not in w]
    assert ours == []


def test_every_dag_follows_the_house_rules(dagbag):
    bag, _ = dagbag
    for dag_id, dag in bag.dags.items():
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id}: doc_md missing"
        assert dag.tags, f"{dag_id}: no tags"
        assert "release-train" in dag.tags, f"{dag_id}: missing the release-train tag"
        unknown = [t for t in dag.tags if not is_known_tag(t)]
        assert unknown == [], f"{dag_id}: tags outside the vocabulary: {unknown}"
        for task in dag.tasks:
            assert task.owner == OWNER, f"{dag_id}.{task.task_id}: owner {task.owner!r}"
        assert dag.catchup is False, f"{dag_id}: catchup must be off"


def test_dags_with_all_done_reporters_have_a_failure_watcher(dagbag):
    """A reporting leaf on ALL_DONE would otherwise hide upstream failures from the run state."""
    from release_train_airflow.dag_defaults import WATCHER_TASK_ID

    bag, _ = dagbag
    for dag_id, dag in bag.dags.items():
        lenient = [t.task_id for t in dag.tasks if t.trigger_rule in ("all_done", "none_failed", "always")]
        if lenient:
            assert WATCHER_TASK_ID in dag.task_dict, f"{dag_id}: {lenient} need a watcher"
            watcher = dag.task_dict[WATCHER_TASK_ID]
            assert watcher.trigger_rule == "one_failed"
            assert set(watcher.upstream_task_ids) == set(dag.task_dict) - {WATCHER_TASK_ID}


def hidden_failures(dag) -> list[str]:
    """The tasks whose failure would not fail the run: neither a leaf nor upstream of one
    through tasks that run only when all their upstreams succeeded."""
    reaches_a_leaf: dict[str, bool] = {}

    def fails_the_run(task_id: str) -> bool:
        if task_id not in reaches_a_leaf:
            downstream = dag.task_dict[task_id].downstream_task_ids
            reaches_a_leaf[task_id] = not downstream or any(
                dag.task_dict[d].trigger_rule == "all_success" and fails_the_run(d) for d in downstream
            )
        return reaches_a_leaf[task_id]

    return sorted(t for t in dag.task_dict if not fails_the_run(t))


def test_hidden_failures_finds_a_failure_an_all_done_leaf_would_swallow():
    import pendulum
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("swallowing", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        work, report = EmptyOperator(task_id="work"), EmptyOperator(task_id="report", trigger_rule="all_done")
        work >> report
    assert hidden_failures(dag) == ["work"]
    report.trigger_rule = "all_success"
    assert hidden_failures(dag) == []


def test_a_failure_anywhere_fails_the_run(dagbag):
    """Airflow fails a run when a leaf ends failed or upstream_failed: a DAG without a
    watcher must carry every failure to a leaf as upstream_failed."""
    from release_train_airflow.dag_defaults import WATCHER_TASK_ID

    bag, _ = dagbag
    for dag_id, dag in bag.dags.items():
        if WATCHER_TASK_ID in dag.task_dict:
            continue
        hidden = hidden_failures(dag)
        assert hidden == [], f"{dag_id}: a failure of {hidden} would not fail the run; add watch_for_failures"
        assert dag.has_on_failure_callback, f"{dag_id}: a failed run must reach people (notify_failed_runs)"


def test_a_broken_oem_entry_is_an_import_error_naming_it(monkeypatch, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    registry = config / "oems.yaml"
    registry.write_text(registry.read_text().replace("timezone: America/New_York", "timezone: America/New_Yrok"))
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(config))
    bag, _ = parse(monkeypatch)
    errors = {path.rsplit("/", 1)[-1]: message for path, message in bag.import_errors.items()}
    assert list(errors) == ["release_train_config.py"], errors
    message = errors["release_train_config.py"]
    assert "oems.yaml:" in message and "OEM 'orbitel', field 'timezone'" in message
    assert "did you mean 'America/New_York'" in message


@pytest.mark.parametrize(
    "offence",
    [
        "socket.create_connection(('127.0.0.1', 9))",
        "sqlite3.connect('/tmp/x.db')",
        "BaseHook.get_connection('release_db')",
    ],
)
def test_the_parse_time_guard_catches_io(monkeypatch, tmp_path, offence):
    (tmp_path / "offender.py").write_text(
        "import socket, sqlite3\n"
        "from airflow.sdk import BaseHook, dag\n"
        f"{offence}\n"
        "@dag(schedule=None)\n"
        "def offender(): pass\n"
        "offender()\n"
    )
    bag, _ = parse(monkeypatch, tmp_path)
    assert "at DAG parse time" in next(iter(bag.import_errors.values()))


DELIVERY_PARAMS = {
    "target_release": None,
    "dry_run": False,
    "approval_deadline": None,
    "gate_poll_seconds": 60,
    "verify_grace_seconds": 300,
}


def test_delivery_dags_hold_their_params_once_not_in_every_task(dagbag):
    """attach_params: the trigger form is the DAG's; tasks hold no copies for the DAG
    processor to validate, and a task still sees the DAG's params merged with the run's conf."""
    import copy

    from airflow.sdk.definitions.param import process_params
    from airflow.serialization.serialized_objects import DagSerialization

    bag, _ = dagbag
    deliveries = [dag for dag_id, dag in sorted(bag.dags.items()) if dag_id.startswith("oem_delivery__")]
    assert [d.dag_id for d in deliveries] == ["oem_delivery__kestrel", "oem_delivery__nimbus", "oem_delivery__orbitel"]
    for dag in deliveries:
        assert dag.params.dump() == DELIVERY_PARAMS, dag.dag_id
        assert [t.task_id for t in dag.tasks if t.params] == [], dag.dag_id
        # what the scheduler and the UI's trigger form get
        assert DagSerialization.from_dict(DagSerialization.to_dict(dag)).params.dump() == DELIVERY_PARAMS
    # each DAG its own Params: merging a run's conf sets the merged Params' values
    first, second = (d.params.get_param("target_release") for d in deliveries[:2])
    assert first is not second and first.value is None
    dag = copy.deepcopy(deliveries[0])
    seen = process_params(
        dag, dag.task_dict["aim_on_install_day"], {"target_release": "2026.22"}, suppress_exception=False
    )
    assert seen == {**DELIVERY_PARAMS, "target_release": "2026.22"}
    with pytest.raises(Exception, match="target_release"):
        process_params(dag, dag.task_dict["install"], {"target_release": "22"}, suppress_exception=False)


def test_a_delivery_task_follows_every_task_whose_result_it_takes(dagbag):
    """Results passed as arguments (not templated: takes_upstream_results) draw the edges a
    templated XCom reference would: recover (ONE_FAILED) follows install as well as verify,
    so a failed install is rolled back too."""
    bag, _ = dagbag
    dag = bag.dags["oem_delivery__nimbus"]
    assert {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} == {
        "plan_delivery": [],
        "wait_for_install_date": ["plan_delivery"],
        "aim_on_install_day": ["plan_delivery", "wait_for_install_date"],
        "install": ["aim_on_install_day"],
        "verify": ["install"],
        "publish_docs": ["install", "verify"],
        "recover": ["install", "verify"],
        "notify_delivered": ["install", "publish_docs"],
    }
    assert dag.task_dict["recover"].trigger_rule == "one_failed"


def test_a_worker_running_a_delivery_task_builds_only_that_oem_dag(monkeypatch):
    """The task runner sets the parsing context: no 1,000-OEM parse per task."""
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "oem_delivery__orbitel")
    bag, _ = parse(monkeypatch, DAGS / "oem_delivery.py")
    assert bag.import_errors == {}
    assert list(bag.dag_ids) == ["oem_delivery__orbitel"]


def test_every_dag_tells_the_release_channel_when_a_run_fails(dagbag):
    """One notifier of our own as the DAG-level failure callback, and the flag the
    scheduler reads from the serialized DAG to ask the DAG processor to run it."""
    from airflow.serialization.serialized_objects import DagSerialization

    from release_train_airflow.notifiers import RunFailureNotifier

    bag, _ = dagbag
    for dag_id, dag in bag.dags.items():
        callbacks = dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]
        notifiers = [c for c in callbacks if isinstance(c, RunFailureNotifier)]
        assert len(notifiers) == 1, f"{dag_id}: on_failure_callback {dag.on_failure_callback!r}"
        assert notifiers[0].conn_id == "ava_notify"
        assert DagSerialization.to_dict(dag)["dag"].get("has_on_failure_callback") is True, dag_id
