#!/usr/bin/env bash
# Airflow for this project, on this machine, in one command.
#
#   scripts/airflow.sh              start `airflow standalone` (API server + UI, scheduler,
#                                   DAG processor, triggerer) with this project's DAGs;
#                                   Ctrl-C stops it all
#   scripts/airflow.sh ARGS...      run `airflow ARGS...` against the same setup, e.g.
#                                   scripts/airflow.sh dags list
#                                   scripts/airflow.sh dags trigger mtl_training
#                                   scripts/airflow.sh dags test mtl_training
#
# Everything Airflow keeps (airflow.cfg, the SQLite metadata DB, task logs, the generated admin
# password) lives in <project>/.airflow, which git ignores; delete that folder to start afresh.
# The UI is at http://localhost:8080; log in as `admin` with the password that Airflow generates
# on first start (this script prints it; it is kept in
# .airflow/simple_auth_manager_passwords.json.generated).
#
# Environment:
#   AIRFLOW__API__PORT   port of the API server and UI (default 8080)
#   AIRFLOW__API__HOST   address it listens on (default 127.0.0.1, this machine only)
#   MTL_PROJECT_DIR      workspace the DAG's tasks run in (default: this project)
#   MTL_GPU_POOL_SLOTS   slots of the GPU training pool (default 1: one training at a time)
# Airflow comes from <project>/.venv when it exists, else from `airflow` on PATH.
set -euo pipefail

PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export AIRFLOW_HOME="$PROJECT/.airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$PROJECT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PROJECT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# The DAG has no schedule, so unpaused it still only runs when triggered; paused, a trigger
# from the UI would just queue.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export MTL_PROJECT_DIR="${MTL_PROJECT_DIR:-$PROJECT}"
export DVC_NO_ANALYTICS="${DVC_NO_ANALYTICS:-1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Local only: the simple auth manager keeps its password in a plain file. Set 0.0.0.0 to expose it.
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
PORT="$AIRFLOW__API__PORT"
# Task workers reach the API server at localhost:8080 unless told otherwise.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$PORT/execution/}"

if [[ -x "$PROJECT/.venv/bin/airflow" ]]; then
  AIRFLOW="$PROJECT/.venv/bin/airflow"
elif command -v airflow >/dev/null 2>&1; then
  AIRFLOW="$(command -v airflow)"
else
  echo "error: no Airflow found: create $PROJECT/.venv with the project installed, or put airflow on PATH" >&2
  exit 1
fi
mkdir -p "$AIRFLOW_HOME"

if [[ $# -gt 0 ]]; then
  exec "$AIRFLOW" "$@"
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "error: port $PORT is already in use; choose another, e.g. AIRFLOW__API__PORT=8081 $0" >&2
  exit 1
fi

URL="http://localhost:$PORT"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

api_up() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
  fi
}

# Once the API server answers, say how to log in (standalone's own banner scrolls away fast and
# shows the password only the very first time). Gives up when Airflow exits or after 10 minutes.
announce() {
  local airflow_pid=$1
  for _ in $(seq 600); do
    kill -0 "$airflow_pid" 2>/dev/null || return 0
    if [[ -s "$PASSWORDS" ]] && api_up; then
      local password
      password="$(sed -n 's/.*"admin" *: *"\([^"]*\)".*/\1/p' "$PASSWORDS")"
      cat <<EOF

==================================================================================
 Airflow is up:  $URL   (DAGs: mtl_training, mtl_retraining, mtl_ingest)
 user:           admin
 password:       ${password:-see $PASSWORDS}
                 (kept in $PASSWORDS)
 Stop with Ctrl-C.
==================================================================================

EOF
      return 0
    fi
    sleep 1
  done
}

# The metadata DB and the pool the training tasks run in (params.yaml airflow.gpu_pool), made
# before the scheduler starts: a task in a pool that does not exist would never be scheduled.
PYTHON="$(dirname "$AIRFLOW")/python"
[[ -x "$PYTHON" ]] || PYTHON=python3
POOL="$("$PYTHON" -c 'import sys, yaml; print(((yaml.safe_load(open(sys.argv[1])) or {}).get("airflow") or {}).get("gpu_pool") or "")' "$MTL_PROJECT_DIR/params.yaml")"
"$AIRFLOW" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
if [[ -n "$POOL" ]]; then
  "$AIRFLOW" pools set "$POOL" "${MTL_GPU_POOL_SLOTS:-1}" "training tasks that may use a GPU (params.yaml airflow.gpu_pool)" >/dev/null
fi

echo "Starting Airflow for $PROJECT (AIRFLOW_HOME=$AIRFLOW_HOME, UI on $URL) ..."
( announce $$ & )  # detached, so that it is not left a zombie under `airflow standalone`
exec "$AIRFLOW" standalone
