"""The AVA release train's domain: calendar, OEM registry, release database, notes,
approval gate and roadmap prioritisation. Pure Python; never imports Airflow."""
