-- The release database lives beside Airflow's metadata database on the same server,
-- as a database of its own (docker-compose.yaml's postgres service runs this once).
CREATE DATABASE release_train OWNER airflow;
