# The release train's Airflow image: the official Airflow 3.3.2 image plus this
# project's pinned run-time requirements (providers, SQLAlchemy drivers, asyncssh, ...).
# Only requirements.txt: the test and lint tools of requirements-dev.txt stay out of it.
# dags/, plugins/, include/ and config/ are mounted by docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt constraints.txt /opt/release-train/
RUN pip install --no-cache-dir -r /opt/release-train/requirements.txt -c /opt/release-train/constraints.txt
