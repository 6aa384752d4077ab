"""Data-parallel training with `torchrun`: 2 CPU processes (gloo) keep identical models."""

import json
import os
import re
import shutil
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


def trained(stdout: str) -> int:
    """How many processes reported a trained model (the train stage's closing line)."""
    return len(re.findall(r"^trained \w+ on \w+: best epoch", stdout, re.M))


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
    assert trained(proc.stdout) == 1
    info = json.loads(Paths.at(project).train_info.read_text())
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["mtl-training"])
    assert list(runs["run_id"]) == [info["run_id"]]


def test_train_stage_launches_torchrun_itself_on_one_and_on_two_machines(project):
    """train.distributed: `mtl train` (what dvc repro and the Airflow task run) starts torchrun
    itself; with nnodes 2 two `mtl train` processes (two machines, here one) meet at the
    rendezvous and train one model, logged once."""
    from mtl.cli import main
    from mtl.paths import Paths
    from tests.airflow.live import free_port
    from tests.conftest import set_params

    set_params(project, {"train.epochs": 1, "train.device": "cpu", "train.distributed.nproc_per_node": 2})
    for stage in ("generate", "validate", "preprocess"):
        assert main(["--project", str(project), stage]) == 0
    env = {**os.environ, "MTL_PROJECT_DIR": str(project), "MTL_PIPELINE_RUN_ID": "run-1"}
    train = [sys.executable, "-m", "mtl.cli", "--project", str(project), "train"]
    one = subprocess.run(train, env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]
    assert "training with torchrun" in one.stdout and "--nproc-per-node=2 --standalone" in one.stdout
    assert trained(one.stdout) == 1  # rank 0 alone reports and writes

    paths = Paths.at(project)
    shutil.rmtree(paths.model_dir / "checkpoints", ignore_errors=True)  # train afresh, not resume
    set_params(project, {"train.distributed.nproc_per_node": 1, "train.distributed.nnodes": 2,
                         "train.distributed.rdzv_endpoint": f"127.0.0.1:{free_port()}"})
    env["MTL_PIPELINE_RUN_ID"] = "run-2"
    nodes = [subprocess.Popen(train, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [node.communicate(timeout=300) for node in nodes]
    for node, (out, err) in zip(nodes, outs):
        assert node.returncode == 0, out[-2000:] + err[-3000:]
        assert "--nnodes=2 --rdzv-backend=c10d" in out and "--rdzv-id=run-2" in out
    assert sum(trained(out) for out, _ in outs) == 1
    info = json.loads(paths.train_info.read_text())
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["mtl-training"])
    assert len(runs) == 2 and info["run_id"] in set(runs["run_id"])
