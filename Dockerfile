# The release train's Airflow image: the official Airflow 3.3.2 image plus this
# project's pinned run-time requirements (providers, SQLAlchemy drivers, asyncssh, ...).
# Only requirements.txt: the test and lint tools of requirements-dev.txt stay out of it.
# dags/, plugins/, include/ and config/ are mounted by docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11

# the git change source (docs/change-sources.md): GitPython and the git provider run the git
# binary, and ssh for repositories cloned over SSH with a key from the connection
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:0 requirements.txt constraints.txt /opt/release-train/
RUN pip install --no-cache-dir -r /opt/release-train/requirements.txt -c /opt/release-train/constraints.txt
