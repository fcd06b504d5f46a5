"""Airflow adapters of the release train: timetables, triggers, sensors, operators and
the OEM portal app. Registered by ``plugins/release_train_plugin.py``."""
