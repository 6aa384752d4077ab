#!/usr/bin/env bash
# First start of the stack's PostgreSQL (docker-entrypoint-initdb.d): one database for Airflow's
# metadata, one for the MLflow tracking server's backend store, one for its users and permissions
# (basic-auth app), all owned by $POSTGRES_USER.
set -euo pipefail
for db in "${AIRFLOW_DB:-airflow}" "${MLFLOW_DB:-mlflow}" "${MLFLOW_AUTH_DB:-mlflow_auth}"; do
  if [[ "$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
      -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
  fi
done
