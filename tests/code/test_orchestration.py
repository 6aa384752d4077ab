"""The Airflow side of the pipeline as plain functions: the trigger form, each run's workspace with
its params, the retraining fingerprint. (The DAGs themselves run in tests/airflow/.)"""

from __future__ import annotations

import json

import pytest
import yaml

from mtl import orchestration as orch
from mtl.runstate import active_run
from mtl.config import ConfigError, load_config
from mtl.data.ingest.sources import SourceError
from tests.conftest import REPO


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def cfg():
    return load_config(REPO / "params.yaml")


def test_form_defaults_are_params_yaml(raw, cfg):
    form = orch.form(cfg)
    assert form["epochs"]["default"] == raw["train"]["epochs"]
    assert form["architecture"]["default"] == raw["model"]["architecture"]
    assert form["tasks"]["default"] == [t["name"] for t in raw["tasks"]]
    # the form's defaults change nothing
    assert orch.overrides({k: v["default"] for k, v in form.items()}, cfg) == {}


def test_overrides_only_what_differs(cfg):
    out = orch.overrides({"epochs": 1, "architecture": "ple", "window_days": None}, cfg)
    assert out == {"train.epochs": 1, "model.architecture": "ple"}


def test_dropping_a_task_drops_its_gate_entry(raw, cfg):
    out = orch.overrides({"tasks": ["click", "purchase"]}, cfg)
    assert [t["name"] for t in out["tasks"]] == ["click", "purchase"]
    assert set(out["gate"]["tasks"]) == {"click", "purchase"}
    # written as params.yaml has them, not with every default spelled out
    assert out["tasks"] == [t for t in raw["tasks"] if t["name"] in ("click", "purchase")]
    load_config(REPO / "params.yaml", out)  # a valid config


def test_another_balancing_method_drops_static_weights(raw, cfg):
    assert any("weight" in t for t in raw["tasks"])
    out = orch.overrides({"weighting": "famo"}, cfg)
    assert out["train.weighting.method"] == "famo"
    assert not any("weight" in t for t in out["tasks"])
    assert load_config(REPO / "params.yaml", out).train.weighting.method == "famo"


@pytest.mark.parametrize("mode, scale, require", [("strict", 0.5, True), ("relaxed", 2.0, False)])
def test_gate_strictness(raw, cfg, mode, scale, require):
    gate = orch.overrides({"gate": mode}, cfg)["gate"]
    assert gate["require_improvement"] is require
    for task, rule in raw["gate"]["tasks"].items():
        assert gate["tasks"][task]["max_regression"] == pytest.approx(rule["max_regression"] * scale)
        assert gate["tasks"][task].get("floor") == rule.get("floor")  # floors never move
    for metric in ("auc", "rmse"):  # the slice limits, one per metric
        assert gate["slices"]["scenario"][metric]["max_regression"] == pytest.approx(
            raw["gate"]["slices"]["scenario"][metric]["max_regression"] * scale)


def test_unknown_field_or_task_is_refused(cfg):
    with pytest.raises(ValueError, match="unknown form field"):
        orch.overrides({"epoch": 3}, cfg)
    with pytest.raises(ValueError, match="not tasks of params.yaml"):
        orch.overrides({"tasks": ["clicks"]}, cfg)


def test_a_run_gets_a_workspace_with_its_params_and_the_project_is_untouched(project):
    own = (project / "params.yaml").read_bytes()
    root, params = orch.open_run(project, {"train.epochs": 1}, {"dag_id": "d", "run_id": "manual__2026-12-03T10:00:00+00:00"})
    assert params["train"]["epochs"] == 1
    assert root.parent == project / ".mtl" / "runs" and ":" not in root.name and "+" not in root.name
    assert load_config(root / "params.yaml").train.epochs == 1
    assert (project / "params.yaml").read_bytes() == own
    assert active_run(root) == {"dag_id": "d", "run_id": "manual__2026-12-03T10:00:00+00:00",
                                "overrides": {"train.epochs": 1}}
    assert active_run(project) is None
    assert (root / "dvc.yaml").read_bytes() == (project / "dvc.yaml").read_bytes()
    assert (root / "mtl" / "cli.py").is_file() and not (root / ".git").exists()
    # a second run beside it, with other values: its own workspace
    other, _ = orch.open_run(project, {"train.epochs": 3}, {"run_id": "other"})
    assert other != root and load_config(other / "params.yaml").train.epochs == 3
    assert load_config(root / "params.yaml").train.epochs == 1


def test_bad_run_params_make_nothing_and_name_the_key(project):
    own = (project / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match="train.epochs"):
        orch.open_run(project, {"train.epochs": 0}, {"run_id": "r"})
    with pytest.raises(SourceError, match="data.source: 'nowhere' does not exist"):
        orch.open_run(project, {"data.source": "nowhere"}, {"run_id": "r"})
    assert (project / "params.yaml").read_bytes() == own
    assert not (project / ".mtl" / "runs").exists()


def test_incoming_files_and_fingerprint(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.parquet").write_bytes(b"one")
    (folder / "b.csv").write_bytes(b"two")
    (folder / "c.parquet.part").write_bytes(b"half-written")
    (folder / ".hidden.parquet").write_bytes(b"not yet")
    assert [p.name for p in orch.data_files(folder)] == ["a.parquet", "b.csv"]
    before = orch.content_fingerprint(orch.data_files(folder), folder)
    assert orch.content_fingerprint(orch.data_files(folder), folder) == before
    (folder / "a.parquet").write_bytes(b"ONE")
    assert orch.content_fingerprint(orch.data_files(folder), folder) != before
    assert set(orch.listing(folder)) == {"a.parquet", "b.csv"}


def test_stage_links(project):
    from mtl.handoffs import Decision, TrainInfo
    from mtl.paths import Paths

    paths = Paths.at(project)
    assert orch.stage_links(project, "train") is None  # nothing produced yet
    TrainInfo(run_id="abc", experiment_id="1", model_uri="models:/m-1", best_epoch=1, epochs_run=1, seconds=1.0,
              samples_per_second=1.0, device="cpu").write(paths.train_info)
    Decision(model_name="m", candidate_run_id="abc", promote=True, summary="promoted",
             registered_version="3").write(paths.decision_file)
    assert orch.stage_links(project, "train") == {"mlflow_run_id": "abc", "mlflow_experiment_id": "1"}
    assert orch.stage_links(project, "promote") == {"mlflow_run_id": "abc", "mlflow_experiment_id": "1",
                                                     "model_name": "m", "model_version": "3"}


def test_handoffs_round_trip_and_ignore_keys_they_do_not_know(tmp_path):
    from mtl.handoffs import Decision, Verdict

    decision = Decision(model_name="m", candidate_run_id="r", promote=False, summary="already champion (version 2)",
                        already_champion=True, champion_version="2")
    decision.write(tmp_path / "decision.json")
    assert Decision.read(tmp_path / "decision.json") == decision
    assert decision.version == "2"  # nothing registered: the version it already was
    # a verdict read from a decision file: the extra keys are not a verdict's, and are ignored
    assert Verdict.read(tmp_path / "decision.json").summary == decision.summary
    with pytest.raises(FileNotFoundError, match="run `mtl gate`"):
        Verdict.read(tmp_path / "gate.json")


def test_deployment_settings_override_params_yaml(raw, cfg):
    """A stack's queue and remote (environment) win over params.yaml; empty means not set."""
    section = cfg.airflow.model_copy(update={"gpu_queue": "gpus", "dvc_remote": None})
    assert orch.deployment(section, env={}) == {"gpu_queue": "gpus", "dvc_remote": None}
    env = {"MTL_GPU_QUEUE": "gpu", "MTL_DVC_REMOTE": "minio"}
    assert orch.deployment(section, env=env) == {"gpu_queue": "gpu", "dvc_remote": "minio"}
    assert orch.deployment(section, env={"MTL_GPU_QUEUE": ""})["gpu_queue"] == "gpus"
    assert orch.gpu_task_args(section, env=env) == {"pool": raw["airflow"]["gpu_pool"], "queue": "gpu"}
    # no queue anywhere: the executor's default queue (LocalExecutor ignores queues anyway)
    assert orch.gpu_task_args(cfg.airflow, env={}) == {"pool": raw["airflow"]["gpu_pool"]}


def test_the_dags_read_the_typed_config_defaults(tmp_path):
    """A params.yaml without an airflow section gets the config's defaults in the DAGs (one
    source of defaults: the pool is mtl.config's, not a second guess in the orchestration)."""
    from mtl.config import AirflowConfig

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw.pop("airflow")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    cfg = orch.read_config(tmp_path)
    assert cfg.airflow == AirflowConfig()
    assert orch.gpu_task_args(cfg.airflow, env={}) == {"pool": AirflowConfig().gpu_pool}
    assert orch.default_args(cfg.airflow)["retries"] == AirflowConfig().retries
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw | {"train": {"epochs": 0}}))
    with pytest.raises(ConfigError, match="train.epochs"):
        orch.read_config(tmp_path)
