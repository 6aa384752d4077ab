#!/usr/bin/env bash
# Create .bench-venv: the project (pinned exactly as in .venv) plus torch-rechub, for
# scripts/bench_train.py only. torch-rechub is never a project dependency: it lives in this
# separate, git-ignored environment and nowhere in pyproject.toml or requirements.lock.
#
# The project part is scripts/setup.sh itself (same torch CPU/CUDA choice, same lock file), so
# the benchmark measures the torch build the pipeline trains with. torch-rechub is then added
# with requirements.lock as a constraint file: it may not move torch, numpy, pandas or
# scikit-learn, and the install fails rather than change them.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${BENCH_VENV:-.bench-venv}
# 0.9.0 is the newest release; it needs only numpy, pandas, scikit-learn, torch and tqdm, all
# of which the lock file already pins.
TORCH_RECHUB_VERSION=0.9.0

VENV=$VENV bash scripts/setup.sh

echo "==> installing torch-rechub $TORCH_RECHUB_VERSION into $VENV (requirements.lock as constraints)"
if [ -x "$VENV/bin/uv" ]; then
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" -q -c requirements.lock "torch-rechub==$TORCH_RECHUB_VERSION"
else
  "$VENV/bin/python" -m pip --disable-pip-version-check install -q -c requirements.lock \
    "torch-rechub==$TORCH_RECHUB_VERSION"
fi
"$VENV/bin/python" -m pip --disable-pip-version-check check
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
import torch_rechub  # noqa: F401  (fails here, not mid-benchmark, if the install is broken)
print("==> benchmark environment ready: " + ", ".join(
    f"{p} {version(p)}" for p in ("torch", "torch-rechub", "numpy", "pandas", "scikit-learn")))
EOF
