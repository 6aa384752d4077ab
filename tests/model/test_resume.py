"""A killed training run resumes from its last epoch and ends with the same model."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mtl.training import loop
from tests.conftest import set_params
from tests.model.test_model import SPEC, TASKS, config, synthetic_arrays

SPEC_T = type(SPEC)(SPEC.cardinalities, SPEC.n_numeric, SPEC.tasks, ("binary", "binary", "regression"))


class Killed(Exception):
    pass


def _train(tmp_path, kill_at=None, fingerprint="run-1", **train):
    cfg = config(epochs=4, patience=4, **train)

    def on_epoch(record):
        if record["epoch"] == kill_at:
            raise Killed  # dies after finishing this epoch, before its state is saved

    return loop.train(synthetic_arrays(3000, 0), synthetic_arrays(800, 1), SPEC_T, TASKS, cfg, on_epoch=on_epoch,
                      resume=loop.Resume(tmp_path / "state.pt", fingerprint))


@pytest.mark.parametrize("method", ["static", "uncertainty", "dwa"])
def test_interrupted_run_resumes_to_the_same_model(tmp_path, method):
    straight = _train(tmp_path / "a", **{"weighting": {"method": method}})
    with pytest.raises(Killed):
        _train(tmp_path / "b", kill_at=3, **{"weighting": {"method": method}})
    resumed = _train(tmp_path / "b", **{"weighting": {"method": method}})
    assert resumed.resumed_from == 3  # epochs 1-2 were saved; epoch 3 is redone
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.best_epoch == straight.best_epoch
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_state_from_another_run_is_ignored(tmp_path):
    with pytest.raises(Killed):
        _train(tmp_path, kill_at=2)
    fresh = _train(tmp_path, fingerprint="other-data")
    assert fresh.resumed_from == 0 and len(fresh.history) == 4


@pytest.mark.slow
def test_killed_train_stage_resumes(project):
    """SIGKILL `mtl train` mid-run (as a lost worker would); the retry resumes and finishes."""
    from mtl.cli import main
    from mtl.paths import Paths

    set_params(project, {"train.epochs": 8, "train.patience": 8})
    for stage in ("generate", "validate", "preprocess"):
        assert main(["--project", str(project), stage]) == 0
    paths = Paths.at(project)
    mtl = [sys.executable, "-m", "mtl.cli", "--project", str(project), "train"]
    env = {**os.environ, "MTL_PROJECT_DIR": str(project)}
    proc = subprocess.Popen(mtl, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not paths.train_state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert paths.train_state.exists(), "no per-epoch state was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not paths.train_info.exists()  # the killed run finished nothing

    retry = subprocess.run(mtl, env=env, capture_output=True, text=True, timeout=300)
    assert retry.returncode == 0, retry.stderr
    assert "resumed from the checkpoint of epoch" in retry.stdout
    assert paths.train_info.exists() and not paths.train_state.exists()
    # the retry went on in the killed attempt's MLflow run: one run, finished, every epoch once
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["mtl-training"])
    assert list(runs["status"]) == ["FINISHED"], runs[["run_id", "status"]]
    history = mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "train_loss_click")
    assert sorted(m.step for m in history) == sorted({m.step for m in history}), "an epoch logged twice"
