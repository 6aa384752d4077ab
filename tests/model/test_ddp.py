"""Data-parallel training with `torchrun`: 2 CPU processes (gloo) keep identical models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["static", "pcgrad"])
def test_two_process_gloo_training_keeps_ranks_in_sync(tmp_path, method):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "MTL_REPO": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO / "tests/model/ddp_worker.py"),
         str(tmp_path), method],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # Gradients are averaged across ranks every step, so both hold the very same model.
    assert ranks[0]["params"] == ranks[1]["params"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    # Each rank trained on half of the 4000 rows per epoch (2 epochs), and the model learned.
    assert ranks[0]["seen"] == pytest.approx(2 * 2000, rel=0.01)
    history = ranks[0]["history"]
    assert history[1]["train_loss_ctr"] < history[0]["train_loss_ctr"]
    assert history[-1]["val_auc_ctr"] > 0.6


def test_train_stage_under_torchrun_writes_once(project):
    """`torchrun -m mtl.cli train`: rank 0 logs one MLflow run and writes the model; rank 1 only trains."""
    from mtl.cli import main
    from mtl.paths import Paths
    from tests.conftest import set_params

    set_params(project, {"train.epochs": 1, "train.num_threads": 1})
    for stage in ("generate", "validate", "preprocess"):
        assert main(["--project", str(project), stage]) == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "MTL_PROJECT_DIR": str(project), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "mtl.cli", "--project",
                           str(project), "train"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained mmoe") == 1
    info = json.loads(Paths.at(project).train_info.read_text())
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["mtl-training"])
    assert list(runs["run_id"]) == [info["run_id"]]
