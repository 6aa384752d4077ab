#!/usr/bin/env bash
# Entry point of every container of the stack (Dockerfile): runs its command, e.g.
# `airflow scheduler`, `airflow celery worker --queues gpu`, `mlflow server ...`, `mtl run`.
set -euo pipefail

# Containers run as ${AIRFLOW_UID}:0 and share AIRFLOW_HOME (logs) and the workspace: whatever
# one writes, the others (other uids, same group 0) must be able to update.
umask 0002

# The simple auth manager's users (core.simple_auth_manager_users) get their passwords from this
# file; writing it from the environment gives the admin a password of the operator's choosing
# instead of a generated one that only the API server's log shows.
if [[ -n "${AIRFLOW_ADMIN_PASSWORD:-}" && "${1:-}" == airflow && "${2:-}" == api-server ]]; then
  passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated}"
  mkdir -p "$(dirname "$passwords")"
  python - "$passwords" <<'PY'
import json, os, sys
users = [u.split(":")[0] for u in os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin").split(",") if u]
with open(sys.argv[1], "w") as fh:
    json.dump({users[0]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, fh)
PY
  chmod 0640 "$passwords"
fi

# The MLflow server's basic-auth app reads its admin account and user database from an ini file;
# written here from the environment, so no credential sits in a file of the repository. The
# admin is created on the first start only: later password changes go through MLflow's own API.
if [[ -n "${MLFLOW_ADMIN_PASSWORD:-}" && "${1:-}" == mlflow && "${2:-}" == server ]]; then
  export MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-$HOME/mlflow-basic-auth.ini}"
  mkdir -p "$(dirname "$MLFLOW_AUTH_CONFIG_PATH")"
  ( umask 0077
    cat >"$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_ADMIN_USERNAME:-admin}
admin_password = ${MLFLOW_ADMIN_PASSWORD}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  )
fi

exec "$@"
