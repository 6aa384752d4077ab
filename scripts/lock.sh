#!/usr/bin/env bash
# Regenerate requirements.lock, the pinned environment setup.sh installs with (as constraints).
#
# Run it after changing a pin or an extra in pyproject.toml, then commit both files. It resolves
# the project with every extra (test, text, s3, team) in a scratch environment, checks it
# (`pip check`), and freezes it, sorted as before; torch is pinned without its build suffix
# (setup.sh picks the CPU or CUDA build of that version).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

"$PYTHON" -m venv "$SCRATCH/venv"
PY="$SCRATCH/venv/bin/python"
"$PY" -m pip install -q --disable-pip-version-check "uv==0.13.9"
TORCH=$(sed -n 's/^ *"torch==\([^"]*\)",.*/\1/p' pyproject.toml)
"$SCRATCH/venv/bin/uv" pip install --python "$PY" -q "torch==$TORCH+cpu" 2>/dev/null \
  || "$SCRATCH/venv/bin/uv" pip install --python "$PY" -q "torch==$TORCH+cpu" \
       --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
"$SCRATCH/venv/bin/uv" pip install --python "$PY" -q -e ".[test,text,s3,team]"
"$PY" -m pip check --disable-pip-version-check
"$PY" -m pip freeze --disable-pip-version-check --exclude-editable | sed 's/+cpu$//' | LC_ALL=C sort -f > requirements.lock
echo "requirements.lock: $(wc -l < requirements.lock) packages"
