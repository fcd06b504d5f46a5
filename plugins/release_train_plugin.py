"""Registers the release train's Airflow extensions. Everything else lives in the
``release_train_airflow`` package, which Airflow does not scan (see .airflowignore)."""

from airflow.plugins_manager import AirflowPlugin

from release_train_airflow.resources import portal_repository
from release_train_airflow.timetables import ReleaseTrainTimetable


class PortalOnFirstRequest:
    """The OEM portal's ASGI app, built when the api-server first hands it a request.

    Airflow loads every plugin wherever it needs any of them: the DAG processor does
    to serialize a DAG on our timetable, once per DAG file it parses. Importing FastAPI
    and building the portal there cost about half a second of CPU per file, for an app
    only the api-server serves (bench/dag_parse.py)."""

    def __init__(self):
        self._app = None

    def app(self):
        if self._app is None:
            from release_train_airflow.portal import create_app

            self._app = create_app(portal_repository)
        return self._app

    @property
    def routes(self):
        """What Starlette's ``Mount`` resolves ``url_for`` through (the login redirect)."""
        return self.app().routes

    async def __call__(self, scope, receive, send):
        await self.app()(scope, receive, send)


class ReleaseTrainPlugin(AirflowPlugin):
    name = "release_train"
    timetables = [ReleaseTrainTimetable]
    # the OEM portal, beside the Airflow UI; it authenticates OEM tokens itself
    fastapi_apps = [{"app": PortalOnFirstRequest(), "url_prefix": "/oem-portal", "name": "OEM portal"}]
