"""Registers the release train's Airflow extensions. Everything else lives in the
``release_train_airflow`` package, which Airflow does not scan (see .airflowignore)."""

from airflow.plugins_manager import AirflowPlugin

from release_train_airflow.timetables import ReleaseTrainTimetable


class ReleaseTrainPlugin(AirflowPlugin):
    name = "release_train"
    timetables = [ReleaseTrainTimetable]
