#!/usr/bin/env bash
# Create .venv and install the project with its pinned environment (requirements.lock).
#
# torch is installed first and explicitly: a plain `torch` requirement pulls the multi-GB CUDA
# build even on machines without a GPU. Without an NVIDIA GPU we install the CPU build
# (torch==2.13.0+cpu, from any configured index/wheel folder, else the PyTorch CPU index);
# with one, the default CUDA build from PyPI. Re-running is cheap: it skips what is installed.
#
# Environment:
#   VENV        where the environment goes (default .venv)
#   MTL_TORCH   auto (default: CUDA build if nvidia-smi sees a GPU), cpu or cuda; an image build
#               sees no GPU, so the Dockerfile says which it wants
#   MTL_EXTRAS  the project's extras to install, comma-separated (default none: the local
#               pipeline; `make test` installs test,text,team; the Dockerfile team,s3). test: the
#               test runner; text: the sentence encoder for text columns; team: PostgreSQL
#               drivers, Celery and MLflow's auth app (the team stack); s3: S3 DVC remotes
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
MTL_TORCH=${MTL_TORCH:-auto}
MTL_EXTRAS=${MTL_EXTRAS:-}
PROJECT_SPEC="."
[ -n "$MTL_EXTRAS" ] && PROJECT_SPEC=".[$MTL_EXTRAS]"
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_PROGRESS_BAR=off

TORCH_VERSION=2.13.0
UV_VERSION=0.13.9
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  if [ "$MTL_TORCH" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MTL_TORCH=cuda; else MTL_TORCH=cpu; fi
  fi
  if [ "$MTL_TORCH" = cuda ]; then
    echo "==> installing torch $TORCH_VERSION (CUDA build)"
    "${PIP[@]}" install -q "torch==$TORCH_VERSION"
  elif [ "$MTL_TORCH" = cpu ]; then
    echo "==> installing torch $TORCH_VERSION (CPU build)"
    "${PIP[@]}" install -q "torch==$TORCH_VERSION+cpu" 2>/dev/null \
      || "${PIP[@]}" install -q "torch==$TORCH_VERSION+cpu" --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
  else
    echo "error: MTL_TORCH=$MTL_TORCH: use auto, cpu or cuda" >&2
    exit 1
  fi
fi

echo "==> installing the project and its pinned dependencies (requirements.lock)"
# uv resolves and installs the ~240 pinned packages in seconds where pip takes minutes; pip
# remains the fallback. Either way the already-installed torch satisfies torch==2.13.0.
# --compile-bytecode writes the .pyc files at install time, as pip does: without them every
# process compiles mlflow, sklearn, airflow... from source on import, and where
# PYTHONDONTWRITEBYTECODE is set (CI images) it does so every time: each `mtl` stage, DVC
# command and the promotion load check then starts 5-7 s slower.
if "${PIP[@]}" install -q "uv==$UV_VERSION" && "$VENV/bin/uv" pip install --python "$VENV/bin/python" -q \
    --compile-bytecode -c requirements.lock -e "$PROJECT_SPEC"; then
  :
else
  echo "==> uv unavailable, installing with pip (slower)"
  "${PIP[@]}" install -q -c requirements.lock -e "$PROJECT_SPEC"
fi
"${PIP[@]}" check

# The Airflow UI test drives a real headless Chromium through Playwright. Playwright's own
# browser download is not used: the system's Chromium is, installed here from the OS packages
# when the tests ask for it (MTL_SETUP_BROWSER=1, as `make test` does) and it is missing.
if [ "${MTL_SETUP_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Chromium (for the Airflow UI test) with apt-get"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } \
      || echo "warning: could not install chromium; the Airflow UI test will fail until it is on PATH" >&2
  else
    echo "warning: no chromium on PATH and no apt-get; install Chromium for the Airflow UI test" >&2
  fi
fi
touch "$VENV/.installed"
echo "==> environment ready: $VENV"
