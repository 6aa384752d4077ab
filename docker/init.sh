#!/usr/bin/env bash
# The stack's one-off setup (service airflow-init of docker-compose.yaml), run as root before any
# Airflow component starts; safe to run again on every `docker compose up`.
set -euo pipefail
: "${AIRFLOW_UID:?}" "${AIRFLOW_HOME:?}" "${MTL_PROJECT_DIR:?}"

echo "==> Airflow metadata database (migrations)"
airflow db migrate

# The pool the training tasks run in (params.yaml airflow.gpu_pool): a task in a pool that does
# not exist would never be scheduled.
pool="$(python -c 'import sys, yaml; print(((yaml.safe_load(open(sys.argv[1])) or {}).get("airflow") or {}).get("gpu_pool") or "")' "$MTL_PROJECT_DIR/params.yaml")"
if [[ -n "$pool" ]]; then
  echo "==> pool $pool: ${MTL_GPU_POOL_SLOTS:-1} slot(s)"
  airflow pools set "$pool" "${MTL_GPU_POOL_SLOTS:-1}" "training tasks that may use a GPU (params.yaml airflow.gpu_pool)"
fi

# The DVC remote that mtl_training pushes to ($MTL_DVC_REMOTE), in the MinIO bucket: written to
# DVC's global config under $HOME (the shared AIRFLOW_HOME volume), so every container sees it
# and the team's checkout is left as it is. Credentials stay in the environment (AWS_*).
if [[ -n "${MTL_DVC_REMOTE:-}" && -n "${DVC_BUCKET:-}" ]]; then
  echo "==> DVC remote $MTL_DVC_REMOTE: s3://$DVC_BUCKET/mtl at ${MINIO_ENDPOINT:-http://minio:9000}"
  dvc remote add --global --force "$MTL_DVC_REMOTE" "s3://$DVC_BUCKET/mtl"
  dvc remote modify --global "$MTL_DVC_REMOTE" endpointurl "${MINIO_ENDPOINT:-http://minio:9000}"
fi

# Everything above ran as root; the components run as ${AIRFLOW_UID}:0.
if [[ "$(id -u)" == 0 ]]; then
  chown -R "$AIRFLOW_UID:0" "$AIRFLOW_HOME"
  chmod -R g+rwX "$AIRFLOW_HOME"
fi
echo "==> ready"
