# syntax=docker/dockerfile:1
# The one image of the stack (docker-compose.yaml): every Airflow component, the Celery workers,
# the MLflow server and the `mtl` CLI, with the pinned environment of requirements.lock, installed
# by the same scripts/setup.sh as on a laptop.
#
#   docker build -t mtl-pipeline .                       # CPU build of torch
#   docker build -t mtl-pipeline:cuda --build-arg TORCH=cuda .   # CUDA build, for GPU workers
#
# The project is copied to /opt/mtl; the compose file mounts the team's checkout over it as the
# workspace the DAGs run `dvc repro` in, so a `git pull` there updates DAGs, code and params.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# cpu or cuda (scripts/setup.sh MTL_TORCH): an image build sees no GPU, so it is said here.
ARG TORCH=cpu
# The project's extras: team (PostgreSQL drivers, Celery, MLflow's auth app), s3 (MinIO/S3 DVC
# remotes and artifacts); add text for text columns (data.schema.text: the sentence encoder,
# ~100 MB more).
ARG EXTRAS=team,s3
# Containers run as ${AIRFLOW_UID}:0 (docker-compose.yaml); files are group-0 writable for any uid.
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    MTL_PROJECT_DIR=/opt/mtl \
    DVC_NO_ANALYTICS=1

# git: DVC workspaces are git repositories; curl: health checks; tini: signals and zombies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git curl tini procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow

WORKDIR /opt/mtl
# Dependencies first, in their own layer: a code change does not reinstall ~250 packages.
COPY pyproject.toml requirements.lock ./
COPY scripts/setup.sh scripts/setup.sh
COPY mtl/__init__.py mtl/__init__.py
RUN VENV=/opt/venv MTL_TORCH="${TORCH}" MTL_EXTRAS="${EXTRAS}" bash scripts/setup.sh \
    && rm -rf /root/.cache

COPY . .
RUN chown -R "${AIRFLOW_UID}:0" /opt/mtl /opt/airflow \
    && chmod -R g+rwX /opt/mtl /opt/airflow \
    && find /opt/airflow -type d -exec chmod g+s {} +

USER ${AIRFLOW_UID}:0
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/mtl/docker/entrypoint.sh"]
CMD ["airflow", "version"]
