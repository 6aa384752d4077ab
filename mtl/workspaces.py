"""Run workspaces: a copy of the project in which one run works, so runs never step on each other
or on the user's checkout.

An Airflow run of ``mtl_training`` (and ``mtl --params FILE run``) works in
``.mtl/runs/RUN``: the project's files as git sees them (tracked, and untracked but not ignored:
the user's edits come along), its ``params.yaml`` the run's own (form values applied), and the
pipeline outputs and ``dvc.lock`` of the last run that finished (``.mtl/runs/latest``; before
the first, the checkout's) linked in, so a stage whose inputs did not change is still a no-op. The workspace shares the project's DVC cache (its ``.dvc/config.local`` points
there), its MLflow store and registry, its promotion lock and its users' data files (mtl.paths
resolves them in the project, ``Paths.home``); only pipeline outputs are its own. The checkout's
``params.yaml`` is never written, and two runs with different forms proceed at once; promotion
stays serialised by the registry's compare-and-set under the promotion lock.

A finished workspace is removed, its outputs and dvc.lock kept as ``latest``; a failed one is kept for ``airflow.keep_failed_hours`` so its
outputs and logs can be looked at, then swept. Standard library and PyYAML only: the DAG files
import this module at parse time.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from mtl.runstate import RUN_FILE, STATE_DIR

RUNS = "runs"  # .mtl/runs/RUN
LATEST = "latest"  # .mtl/runs/latest: data/ and dvc.lock of the last run that finished
# Marks a task that started in the workspace and has not finished: one left behind at the end
# means the run failed (or a worker died), and the workspace is kept.
RUNNING = "running"
FAILED_AT = "failed_at"
# What a workspace never copies: outputs are linked in separately, stores stay in the project.
_SKIP = ("data/", ".dvc/cache/", ".dvc/tmp/", f"{STATE_DIR}/")
PIPELINE_LAYER = re.compile(r"^0[1-6]_")  # data/01_raw ... data/06_promotion (mtl/paths.py)


def runs_dir(home: Path) -> Path:
    return Path(home) / STATE_DIR / RUNS


def path_for(home: Path, run_id: str) -> Path:
    """The workspace of ``run_id`` (an Airflow run id holds ':' and '+': kept readable, made safe)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._")
    return runs_dir(home) / (name if name != LATEST else f"{name}_")


def create(home: Path, run_id: str, params: dict, run: dict, refresh: bool = False) -> Path:
    """The workspace of ``run_id`` with ``params`` as its params.yaml. An existing one is reused:
    as it is (a retried setup task), or with ``refresh`` its project files and params brought up
    to date, its outputs kept (`mtl --params FILE run` again). A new one is built beside its
    final place and renamed, so a half-made workspace is never used."""
    home = Path(home).resolve()
    dest = path_for(home, run_id)
    if (dest / "dvc.yaml").is_file():
        if refresh:
            _copy_project(home, dest, params, run)
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _copy_project(home, tmp, params, run)
    seed = latest(home) or home
    if (seed / "dvc.lock").is_file():
        shutil.copy2(seed / "dvc.lock", tmp / "dvc.lock")
    _link_outputs(seed / "data", tmp / "data")
    _share_cache(home, tmp)
    os.replace(tmp, dest)
    return dest


def _copy_project(home: Path, dest: Path, params: dict, run: dict) -> None:
    for rel in _project_files(home):
        src = home / rel
        if src.is_file() and not rel.startswith(_SKIP) and rel != "dvc.lock":  # the workspace's own
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / STATE_DIR).mkdir(exist_ok=True)
    (dest / STATE_DIR / RUN_FILE).write_text(json.dumps(run, indent=2, default=str))


def latest(home: Path) -> Path | None:
    """The outputs and dvc.lock of the last run that finished, or None before the first."""
    folder = runs_dir(home) / LATEST
    return folder if (folder / "dvc.lock").is_file() else None


def _project_files(home: Path) -> list[str]:
    """The project's files as a clone plus the user's uncommitted work holds them."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=home, capture_output=True,
                             text=True, check=True, timeout=60).stdout
        return out.splitlines()
    except (OSError, subprocess.SubprocessError):  # not a git checkout (an image's copy): every file
        return [str(p.relative_to(home)) for p in home.rglob("*")
                if p.is_file() and not any(part.startswith(".venv") for part in p.relative_to(home).parts)]


def _link_outputs(src: Path, dest: Path) -> None:
    """The checkout's pipeline outputs, hard-linked (copied across file systems). DVC removes a
    stage's outputs before it runs the stage, and every stage writes new files, so the
    checkout's files are never written through a link."""
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        # the pipeline's layers only: quarantined batches, incoming files and scores stay out
        if not PIPELINE_LAYER.match(rel.parts[0]) or not path.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def _share_cache(home: Path, dest: Path) -> None:
    """The workspace's DVC settings: the project's local config (remotes, credentials) with the
    project's cache, checked out by link where the file system allows. No git: the workspace is
    not a clone (lineage records the project's commit)."""
    config = configparser.ConfigParser()
    local = home / ".dvc" / "config.local"
    if local.is_file():
        config.read(local)
    cache_dir = config.get("cache", "dir", fallback=None)
    cache_dir = Path(cache_dir) if cache_dir else home / ".dvc" / "cache"
    if not cache_dir.is_absolute():
        cache_dir = (home / ".dvc" / cache_dir).resolve()
    if not config.has_section("cache"):
        config.add_section("cache")
    config.set("cache", "dir", str(cache_dir))
    config.set("cache", "type", "reflink,hardlink,copy")
    if not config.has_section("core"):
        config.add_section("core")
    config.set("core", "no_scm", "true")
    (dest / ".dvc").mkdir(exist_ok=True)
    with open(dest / ".dvc" / "config.local", "w") as fh:
        config.write(fh)


# --- the life of a run's tasks in its workspace ------------------------------------------------

def started(workspace: Path, task: str) -> None:
    marks = Path(workspace) / STATE_DIR / RUNNING
    marks.mkdir(parents=True, exist_ok=True)
    (marks / task).touch()


def finished(workspace: Path, task: str) -> None:
    (Path(workspace) / STATE_DIR / RUNNING / task).unlink(missing_ok=True)


def failed_tasks(workspace: Path) -> list[str]:
    marks = Path(workspace) / STATE_DIR / RUNNING
    return sorted(p.name for p in marks.iterdir()) if marks.is_dir() else []


def close(workspace: Path) -> str:
    """At the end of a run: remove its workspace, or keep it when a task did not finish."""
    workspace = Path(workspace)
    if not workspace.is_dir():
        return f"{workspace}: already gone"
    failed = failed_tasks(workspace)
    if failed:
        (workspace / STATE_DIR / FAILED_AT).write_text(str(time.time()))
        return f"kept {workspace} for debugging: {', '.join(failed)} did not finish"
    _keep_as_latest(workspace)
    shutil.rmtree(workspace)
    return f"removed {workspace}; its outputs and dvc.lock are the next run's starting point"


def _keep_as_latest(workspace: Path) -> None:
    """Move the finished run's outputs and dvc.lock to ``latest`` (renames: no copying), so the
    next run starts from them; the one they replace goes."""
    latest_dir = workspace.parent / LATEST
    new = workspace.parent / f".{LATEST}.{workspace.name}"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    for name in ("data", "dvc.lock"):
        if (workspace / name).exists():
            os.replace(workspace / name, new / name)
    old = workspace.parent / f".{LATEST}.old.{workspace.name}"
    if latest_dir.exists():
        os.replace(latest_dir, old)
    os.replace(new, latest_dir)
    shutil.rmtree(old, ignore_errors=True)


def expired(home: Path, keep_failed_hours: float, now: float | None = None) -> list[Path]:
    """The kept workspaces of failed runs older than ``keep_failed_hours``, and half-made ones."""
    now = time.time() if now is None else now
    found = []
    folder = runs_dir(home)
    for ws in sorted(folder.iterdir()) if folder.is_dir() else []:
        stamp = ws / STATE_DIR / FAILED_AT
        stale_tmp = (ws.name.endswith(".tmp") or ws.name.startswith(f".{LATEST}.")) and now - ws.stat().st_mtime > 3600
        if stale_tmp or (stamp.is_file() and now - float(stamp.read_text() or 0) > keep_failed_hours * 3600):
            found.append(ws)
    return found


def sweep(home: Path, keep_failed_hours: float, now: float | None = None) -> list[Path]:
    """Remove what ``expired`` finds; returns what went."""
    gone = expired(home, keep_failed_hours, now)
    for ws in gone:
        shutil.rmtree(ws, ignore_errors=True)
    return gone
