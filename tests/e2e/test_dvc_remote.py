"""Sharing data through the DVC remote: what one clone pushes, a fresh clone pulls and reproduces.

HOME points into the test's temporary directory, so the committed default remote
(`~/.local/share/mtl/dvc-remote`, see .dvc/config) lands there: the test exercises the shipped
configuration and never writes to the user's real remote.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtl.pipeline import _env as pipeline_env
from tests.conftest import copy_project, set_params

pytestmark = pytest.mark.slow

# A few thousand rows: every split and validation check still has data, and each stage takes seconds.
TINY = {
    "data.synthetic.rows": 4_000,
    "data.synthetic.users": 300,
    "data.synthetic.items": 200,
    "data.synthetic.categories": 10,
    "data.synthetic.brands": 20,
}
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}


def _run(cmd: list[str], root: Path, home: Path) -> str:
    env = pipeline_env() | GIT_IDENTITY | {"HOME": str(home), "MTL_PROJECT_DIR": str(root)}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` failed in {root}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _dvc(root: Path, home: Path, *args: str) -> str:
    return _run([sys.executable, "-m", "dvc", *args], root, home)


def _git(root: Path, home: Path, *args: str) -> str:
    return _run(["git", *args], root, home)


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def _digests(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder``, whatever its layout."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _locked_md5(root: Path, stage: str, out: str) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == out)


def _transform_sha(root: Path) -> str:
    return json.loads((root / "data/03_features/transform.json").read_text())["sha256"]


def test_pull_into_a_fresh_clone_restores_and_reproduces_the_transform(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    origin = copy_project(tmp_path / "origin")
    set_params(origin, TINY)
    _git(origin, home, "commit", "-qam", "tiny data")

    assert _ran(_dvc(origin, home, "repro", "preprocess")) == ["generate", "validate", "preprocess"]
    _dvc(origin, home, "push")
    # dvc.lock travels through git, the cached outputs through the remote.
    _git(origin, home, "add", "-A")
    _git(origin, home, "commit", "-qm", "data")
    remote = home / ".local/share/mtl/dvc-remote"
    assert any(p.is_file() for p in remote.rglob("*")), "dvc push wrote nothing to the default remote"

    clone = tmp_path / "clone"
    _git(tmp_path, home, "clone", "-q", str(origin), str(clone))
    assert not (clone / "data/01_raw").exists() and not (clone / ".dvc/cache").exists()
    # Only generate..preprocess have run, so pull their outputs (a plain `dvc pull` would also ask
    # for a model.pt that dvc.lock does not record yet).
    _dvc(clone, home, "pull", "--with-deps", "preprocess")

    for out in ("data/01_raw", "data/03_features"):
        assert _digests(clone / out) == _digests(origin / out), out
    assert _transform_sha(clone) == _transform_sha(origin)
    # validate's outputs are uncached and git-ignored (data/.gitignore): neither the remote nor git
    # carries them, so the clone's first repro reruns validate. Its result.json comes out identical,
    # so preprocess is not rerun.
    assert _ran(_dvc(clone, home, "repro", "preprocess")) == ["validate"]
    assert json.loads(_dvc(clone, home, "status", "--json", "--with-deps", "preprocess")) == {}
    assert _transform_sha(clone) == _transform_sha(origin)

    # Recomputing the features from the pulled raw data gives the same transform, byte for byte.
    forced = _dvc(clone, home, "repro", "--force", "--single-item", "preprocess")
    assert _ran(forced) == ["preprocess"]
    assert _transform_sha(clone) == _transform_sha(origin)
    for stage, out in (("generate", "data/01_raw"), ("preprocess", "data/03_features")):
        assert _locked_md5(clone, stage, out) == _locked_md5(origin, stage, out), out
