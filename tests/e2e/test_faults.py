"""Faults around a training run: the MLflow tracking server going away mid-training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.airflow.live import free_port
from tests.conftest import set_params, wait_for_http

pytestmark = pytest.mark.slow


class MlflowServer:
    """`mlflow server` on a SQLite store and a local artifact folder; stop() and start() again keep both."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        log = open(self.root / "mlflow-server.log", "ab")
        self.proc = subprocess.Popen(
            [mlflow, "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_http(f"{self.url}/health", self.proc, self.root / "mlflow-server.log", what="mlflow server")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def test_tracking_server_outage_mid_training_fails_clearly_and_a_retry_finishes(project, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from mtl.cli import main
    from mtl.paths import Paths

    set_params(project, {"evaluation.baselines": False})  # the outage is in training: no second model to train
    server = MlflowServer(tmp_path).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        # fail in seconds rather than after MLflow's minutes of retries
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        stages = ["generate", "validate", "preprocess", "baseline", "train", "score",
                  *(["evaluate-task", t] for t in ("click", "add_to_cart", "purchase", "dwell")), "evaluate",
                  "gate", "promote"]

        def run(*names):
            for stage in names:
                args = stage if isinstance(stage, list) else [stage]
                assert main(["--project", str(project), *args]) == 0, stage

        run(*stages)  # the first champion
        client = MlflowClient(server.url, registry_uri=server.url)
        assert client.get_model_version_by_alias("mtl-ecommerce", "champion").version == "1"

        # The next candidate trains longer; the server goes away once its first epoch is saved.
        set_params(project, {"train.epochs": 6, "train.patience": 6})
        paths = Paths.at(project)
        before = paths.train_info.read_text()
        train = [sys.executable, "-m", "mtl.cli", "--project", str(project), "train"]
        proc = subprocess.Popen(train, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while not paths.train_state.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert paths.train_state.exists(), "no per-epoch state was written"
        server.stop()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, out[-2000:] + err[-3000:]
        assert f"the MLflow tracking server at {server.url} did not answer" in err, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        assert paths.train_info.read_text() == before  # the failed run finished nothing

        server.start()  # back, with the same store: the retry resumes and finishes
        assert client.get_model_version_by_alias("mtl-ecommerce", "champion").version == "1"
        assert [v.version for v in client.search_model_versions("name='mtl-ecommerce'")] == ["1"]
        retry = subprocess.run(train, env=dict(os.environ), capture_output=True, text=True, timeout=300)
        assert retry.returncode == 0, retry.stderr[-3000:]
        assert "resumed from the checkpoint of epoch" in retry.stdout
        run(*stages[5:])
        versions = client.search_model_versions("name='mtl-ecommerce'")
        assert sorted(v.version for v in versions) in (["1"], ["1", "2"])
        # only finished runs were ever registered; the champion is one of them
        assert all(client.get_run(v.run_id).info.status == "FINISHED" for v in versions)
        # the retry went on in the interrupted MLflow run: no dangling duplicate
        runs = [r for r in client.search_runs([client.get_experiment_by_name("mtl-training").experiment_id])
                if r.data.tags.get("mtl.role") != "baseline"]  # a baseline child run, where there is one, is not one
        assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"], [(r.info.run_id, r.info.status) for r in runs]
    finally:
        server.stop()
