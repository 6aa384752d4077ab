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

exec "$@"
