"""Run the stages declared in ``dvc.yaml``: the single way the CLI, Makefile and DAGs execute them.

Running through ``dvc repro`` (rather than calling stage functions directly) keeps ``dvc.lock``
and the DVC cache in step with what actually ran, whoever triggered it. DVC refuses to run two
commands in one workspace at once, so runs here queue on a file lock instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from mtl.locks import exclusive, project_stores
from mtl.paths import home_of

PROJECT_ENV = "MTL_PROJECT_DIR"


class StageFailed(RuntimeError):
    """A pipeline stage exited non-zero; the message carries the end of its output."""


def project_root(explicit: str | Path | None = None) -> Path:
    """The project workspace: ``explicit``, else $MTL_PROJECT_DIR, else the nearest parent of the
    working directory holding dvc.yaml. A stage command that DVC runs ($DVC_STAGE set) works in
    the repository DVC runs it in, its working directory, whatever $MTL_PROJECT_DIR says: an
    experiment's copy under .dvc/tmp/exps, a run's workspace."""
    if explicit is not None:
        return Path(explicit).resolve()
    if os.environ.get(PROJECT_ENV) and not os.environ.get("DVC_STAGE"):
        return Path(os.environ[PROJECT_ENV]).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no dvc.yaml in {here} or its parents; run from the project or set ${PROJECT_ENV}")


def stage_names(root: Path) -> list[str]:
    """Stage names in the order dvc.yaml declares them (which is also dependency order), a
    ``foreach`` stage expanded as DVC names its items: ``evaluate_task@0``, ``@1``, ... for a
    list (params.yaml's tasks), ``@key`` for a mapping."""
    names = []
    params = None
    for name, spec in yaml.safe_load((Path(root) / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in spec:
            names.append(name)
            continue
        items = spec["foreach"]
        if isinstance(items, str) and items.startswith("${") and items.endswith("}"):
            if params is None:
                params = yaml.safe_load((Path(root) / "params.yaml").read_text()) or {}
            items = params
            for part in spec["foreach"][2:-1].split("."):
                items = items[part]
        keys = list(items) if isinstance(items, dict) else range(len(items))
        names += [f"{name}@{k}" for k in keys]
    return names


PIPELINE_RUN_ENV = "MTL_PIPELINE_RUN_ID"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # One id per pipeline run, shared by its stages and recorded on the model version (lineage):
    # Airflow's dag run id under Airflow, else a fresh one for this `mtl run` / `dvc repro`.
    if PIPELINE_RUN_ENV not in env:
        env[PIPELINE_RUN_ENV] = env.get("AIRFLOW_CTX_DAG_RUN_ID") or time.strftime("run__%Y%m%dT%H%M%S") + f"_{os.getpid()}"
    # DVC runs each stage's `cmd` through a shell; make sure `mtl` resolves to this interpreter's
    # install even when the virtual environment is not activated (Airflow workers, cron).
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


@contextmanager
def workspace_lock(root: Path, poll_seconds: float = 1.0) -> Iterator[None]:
    """One DVC command at a time in a workspace; a second waits, saying so (mtl/locks.py)."""
    with exclusive(root / ".dvc" / "tmp" / "mtl-pipeline.lock", f"another pipeline run in {root}", poll_seconds):
        yield


def dvc(args: list[str], root: Path, echo=None) -> None:
    """Run one DVC command in the workspace, streaming its output line by line to ``echo``.

    With ``echo=None`` the command writes straight to this process's terminal, so progress bars
    render as they would for a user typing `dvc repro`.
    """
    cmd = [sys.executable, "-m", "dvc", *args]
    if echo is None:
        with workspace_lock(root), project_stores(home_of(root), shared=True):
            rc = subprocess.run(cmd, cwd=root, env=_env()).returncode
        if rc != 0:
            raise StageFailed(f"`dvc {' '.join(args)}` failed (exit {rc}); its output is above")
        return
    tail: list[str] = []
    with workspace_lock(root), project_stores(home_of(root), shared=True):
        proc = subprocess.Popen(
            cmd, cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            echo(line)
            tail = (tail + [line])[-40:]
        rc = proc.wait()
    if rc != 0:
        raise StageFailed(f"`dvc {' '.join(args)}` failed (exit {rc}). Last output:\n" + "\n".join(tail))


def run_stage(name: str, root: str | Path | None = None, echo=print, force: bool = False) -> None:
    """Run one stage (its dependencies must be up to date; DVC skips it if nothing changed,
    unless ``force``)."""
    root = project_root(root)
    if name not in stage_names(root):
        raise ValueError(f"unknown stage {name!r}; dvc.yaml declares {stage_names(root)}")
    dvc(["repro", "--single-item", *(["--force"] if force else []), name], root, echo)


def run_all(root: str | Path | None = None, echo=None) -> None:
    dvc(["repro"], project_root(root), echo)
