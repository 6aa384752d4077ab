#!/usr/bin/env bash
# Regenerate requirements.lock, the pinned environment setup.sh installs with (as constraints).
#
#   bash scripts/lock.sh                        # keep every pin the lock has; add or move only what
#                                               # pyproject.toml now asks for (a new extra, a changed pin)
#   bash scripts/lock.sh --upgrade-package mlflow   # also let these packages move (repeatable)
#   bash scripts/lock.sh --upgrade              # resolve everything afresh (newest that fits)
#
# Run it after changing a pin or an extra in pyproject.toml, then commit both files. It resolves
# the project with every extra (test, text, s3, team) in a scratch environment, checks it
# (`pip check`), and freezes it, names normalised and sorted; torch is pinned without its build suffix
# (setup.sh picks the CPU or CUDA build of that version). Run with nothing changed, it writes the
# same file: the existing pins are the resolver's constraints, except the packages pyproject.toml
# pins itself (its pin wins) and those named by --upgrade-package.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
UPGRADE_ALL=0
UPGRADE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) UPGRADE_ALL=1 ;;
    --upgrade-package) shift; UPGRADE+=("$(echo "$1" | tr 'A-Z_.' 'a-z--')") ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see bash scripts/lock.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# The constraints: the lock's pins, less the packages pyproject.toml pins (so a changed pin there
# moves) and the ones asked to move. Names compared normalised (PEP 503).
: > "$SCRATCH/constraints.txt"
if [ "$UPGRADE_ALL" = 0 ] && [ -f requirements.lock ]; then
  "$PYTHON" - > "$SCRATCH/own" <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in project["dependencies"] + sum(project.get("optional-dependencies", {}).values(), []):
    print(re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", req).group()).lower())
PY
  printf '%s\n' "${UPGRADE[@]}" >> "$SCRATCH/own"
  while IFS= read -r line; do
    name=$(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--')
    grep -qxF "$name" "$SCRATCH/own" || echo "$line"
  done < requirements.lock > "$SCRATCH/constraints.txt"
fi

"$PYTHON" -m venv "$SCRATCH/venv"
PY="$SCRATCH/venv/bin/python"
UV="$SCRATCH/venv/bin/uv"
"$PY" -m pip install -q --disable-pip-version-check "uv==0.13.9"
TORCH=$(sed -n 's/^ *"torch==\([^"]*\)",.*/\1/p' pyproject.toml)
# torch through pip, as setup.sh installs it: pip reads the machine's own configuration (a local
# wheel folder, a mirror), which uv does not
"$PY" -m pip install -q --disable-pip-version-check "torch==$TORCH+cpu" 2>/dev/null \
  || "$PY" -m pip install -q --disable-pip-version-check "torch==$TORCH+cpu" \
       --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
"$UV" pip install --python "$PY" -q -c "$SCRATCH/constraints.txt" -e ".[test,text,s3,team]"
"$PY" -m pip check --disable-pip-version-check
# names normalised (PEP 503), so pip and uv installs freeze to the same lines, in a stable order
cat > "$SCRATCH/normalise.py" <<'PY'
import re, sys
pins = (line.strip().split("==", 1) for line in sys.stdin if "==" in line)
print("\n".join(sorted(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version.removesuffix('+cpu')}"
                        for name, version in pins)))
PY
"$PY" -m pip freeze --disable-pip-version-check --exclude-editable --exclude uv | "$PY" "$SCRATCH/normalise.py" \
  > "$SCRATCH/lock"
if cmp -s "$SCRATCH/lock" requirements.lock; then
  echo "requirements.lock: unchanged ($(wc -l < requirements.lock) packages)"
else
  diff requirements.lock "$SCRATCH/lock" | sed -n 's/^[<>] /  &/p' || true
  cp "$SCRATCH/lock" requirements.lock
  echo "requirements.lock: $(wc -l < requirements.lock) packages (changes above: < old, > new)"
fi
