"""Registers the release train's Airflow extensions. Everything else lives in the
``release_train_airflow`` package, which Airflow does not scan (see .airflowignore)."""

from airflow.plugins_manager import AirflowPlugin

from release_train_airflow.portal import create_app
from release_train_airflow.resources import portal_repository
from release_train_airflow.timetables import ReleaseTrainTimetable


class ReleaseTrainPlugin(AirflowPlugin):
    name = "release_train"
    timetables = [ReleaseTrainTimetable]
    # the OEM portal, beside the Airflow UI; it authenticates OEM tokens itself
    fastapi_apps = [{"app": create_app(portal_repository), "url_prefix": "/oem-portal", "name": "OEM portal"}]
