"""The stages in-process on a small log: MLflow run, registry, gate outcomes."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from mtl import stagelist, tracking
from mtl.stages.report import report
from mtl.config import load_config
from mtl.paths import Paths
from tests.conftest import require_text_extra, set_params


def run_chain(root, overrides=None):
    cfg = load_config(root / "params.yaml", overrides)
    paths = Paths.at(root)
    for name, stage in stagelist.functions().items():
        stage(cfg, paths)
    return paths


@pytest.mark.slow
def test_chain_tracks_registers_and_gates(project):
    set_params(project, {"gate.tasks.click.floor": 0.5, "gate.tasks.add_to_cart.floor": 0.5,
                         "gate.tasks.purchase.floor": 0.5})
    paths = run_chain(project)
    decision = json.loads(paths.decision_file.read_text())
    assert decision["promote"], decision
    assert {t["task"] for t in decision["tasks"]} == {"click", "add_to_cart", "purchase", "dwell"}

    tracking.configure(paths)
    # Artifacts stay inside the project, not in ./mlruns of whatever directory ran the stage.
    assert mlflow.get_experiment_by_name(tracking.EXPERIMENT).artifact_location == paths.mlflow_artifacts.as_uri()
    info = json.loads(paths.train_info.read_text())
    run = MlflowClient().get_run(info["run_id"])
    for task in ("click", "add_to_cart", "purchase"):
        assert 0.5 < run.data.metrics[f"test_auc_{task}"] <= 1.0
        assert run.data.metrics[f"test_oracle_auc_{task}"] >= run.data.metrics[f"test_auc_{task}"] - 0.05
    assert "test_rmse_dwell" in run.data.metrics
    # Thresholds chosen on validation (the model's and the baseline's), reported on test.
    evaluation = json.loads(paths.metrics_file.read_text())
    baseline_info = json.loads(paths.baseline_info.read_text())
    for task in ("click", "add_to_cart", "purchase"):
        e, t = evaluation["tasks"][task], info["thresholds"][task]
        assert 0 < t < 1 and run.data.metrics[f"threshold_{task}"] == pytest.approx(t)
        assert e["threshold"] == t and 0 <= e["f1"] <= 1 and 0 <= e["accuracy"] <= 1
        assert {"precision", "recall"} <= set(e)
        baseline_t = baseline_info["thresholds"][task]
        assert 0 < baseline_t < 1
        assert evaluation["mtl_gain"]["tasks"][task]["baseline_at_threshold"]["threshold"] == baseline_t
    assert "dwell" not in info["thresholds"] and "f1" not in evaluation["tasks"]["dwell"]
    assert 0 < evaluation["tasks"]["click"]["f1"] and "test_f1_click" in run.data.metrics
    assert run.data.tags["mtl.validation"] == "passed"
    assert run.data.tags["mtl.drift_reference"] == "none: no champion of model 'mtl-ecommerce' yet (the first run)"
    assert run.data.tags["mtl.git_commit"]
    assert report(paths).startswith("data validation: passed, ")
    history = MlflowClient().get_metric_history(info["run_id"], "val_auc_click")
    assert [h.step for h in history] == list(range(1, len(history) + 1))
    _follows_mlflow_conventions(run, paths, info)

    champion = MlflowClient().get_model_version_by_alias("mtl-ecommerce", "champion")
    assert champion.run_id == info["run_id"]
    # The registered model scores raw rows through its packaged transform, like evaluate did.
    rows = pd.read_parquet(paths.test_raw_file)
    served = mlflow.pyfunc.load_model("models:/mtl-ecommerce@champion").predict(rows.head(50))
    local = pd.read_parquet(paths.predictions_file).head(50)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), local, check_dtype=False, atol=1e-6)

    assert champion.tags["mtl.decision"] == "promoted"
    assert champion.tags["mtl.validation"] == "passed" and champion.tags["mtl.run_id"] == info["run_id"]
    assert float(champion.tags["test_auc_click"]) == pytest.approx(run.data.metrics["test_auc_click"], abs=1e-5)
    assert decision["load_check"]["passed"]
    assert "# Model card: mtl-ecommerce version 1" in paths.model_card_md.read_text()
    assert "maximised F1 on validation" in paths.model_card_md.read_text()
    assert "<svg" in paths.model_card_html.read_text()  # ROC and reliability curves, inline
    assert champion.description == paths.model_card_md.read_text()  # the card on the version's page

    # A second candidate held to an impossible floor is rejected: it is registered (every
    # candidate is, with its decision) but the champion does not move.
    set_params(project, {"train.seed": 7, "gate.tasks.click.floor": 0.999})
    run_chain(project)
    decision = json.loads(paths.decision_file.read_text())
    assert not decision["promote"]
    assert "click" in decision["summary"]
    assert decision["champion_version"] == str(champion.version)
    assert decision["comparison"]["click"]["gain_interval"] is not None  # judged on paired resamples
    assert MlflowClient().get_model_version_by_alias("mtl-ecommerce", "champion").version == champion.version
    rejected = MlflowClient().get_model_version("mtl-ecommerce", decision["registered_version"])
    assert rejected.tags["mtl.decision"] == "rejected" and "click" in rejected.tags["mtl.decision_summary"]


def _follows_mlflow_conventions(run, paths: Paths, info: dict) -> None:
    """Datasets with lineage, the curves plot, the baseline as a child run, the DVC summary."""
    client = MlflowClient()
    transform_split = json.loads(paths.transform_file.read_text())["split"]
    logged = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(logged) == {"synthetic.train", "synthetic.validation", "synthetic.test"}
    for split, context in (("train", "training"), ("validation", "validation"), ("test", "testing")):
        tags = {t.key: t.value for t in logged[f"synthetic.{split}"].tags}
        assert tags["mlflow.data.context"] == context and tags["rows"] == str(transform_split["rows"][split])
        assert json.loads(logged[f"synthetic.{split}"].dataset.source)["uri"] == str(paths.raw_file)
    assert len({d.dataset.digest for d in logged.values()}) == 3
    assert "training/curves.png" in {f.path for f in client.list_artifacts(run.info.run_id, "training")}
    curves = {p.stem: json.loads(p.read_text()) for p in paths.curves_dir.glob("*.json")}
    assert [pt["epoch"] for pt in curves["val_auc_click"]] == [h["epoch"] for h in info["history"]]
    assert {"train_loss_click", "val_mse_dwell"} <= set(curves)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert [c.data.tags["mtl.role"] for c in children] == ["baseline"]
    baseline = children[0]
    assert baseline.data.params["model.architecture"] == "single_task"
    gain = json.loads(paths.metrics_file.read_text())["mtl_gain"]["tasks"]["click"]
    assert baseline.data.metrics["test_auc_click"] == pytest.approx(gain["baseline"])
    summary = json.loads(paths.summary_file.read_text())
    assert summary["click"]["auc"] == pytest.approx(run.data.metrics["test_auc_click"], abs=1e-5)


@pytest.mark.slow
def test_chain_with_histories_and_titles_serves_raw_histories_and_titles(project):
    """The whole chain with the large-model inputs on: validated (histories precede their rows),
    encoded, trained, registered, and served from raw lists and raw text, unseen titles included."""
    require_text_extra()
    set_params(project, {
        "data.synthetic.history_length": 20, "data.synthetic.history_times": True,
        "data.schema.sequence": {"hist_item_ids": "item_id", "hist_category_ids": "category_id"},
        "data.schema.sequence_time": "hist_ts", "data.schema.text": ["title"],
        "features.sequence.max_length": 20, "evaluation.baselines": False,
        "gate.tasks.click.floor": 0.5, "gate.tasks.add_to_cart.floor": 0.5, "gate.tasks.purchase.floor": 0.5,
    })
    paths = run_chain(project)
    validation = json.loads(paths.validation_result.read_text())
    assert {"expect_history_to_precede_time", "expect_sequences_to_be_aligned"} <= {
        c["expectation"] for c in validation["checks"] if c["success"]}
    summary = json.loads((paths.features_dir / "summary.json").read_text())
    assert summary["transform_sha256"]
    transform = json.loads(paths.transform_file.read_text())
    assert transform["sequence"]["hist_item_ids"] == {"shares": "item_id", "max_length": 20}
    assert transform["text"]["encoder"]["name"] == "all-MiniLM-L6-v2"
    assert transform["stats"]["sequence"]["hist_item_ids"]["mean_length"] > 1
    decision = json.loads(paths.decision_file.read_text())
    assert decision["promote"], decision

    rows = pd.read_parquet(paths.test_raw_file).head(40)
    assert {"hist_item_ids", "hist_category_ids", "title"} <= set(rows.columns)
    model = mlflow.pyfunc.load_model("models:/mtl-ecommerce@champion")
    served = model.predict(rows)
    local = pd.read_parquet(paths.predictions_file).head(40)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), local, check_dtype=False, atol=1e-5)
    # Raw input as a client sends it: plain lists, a title the shop never had, a user with no history.
    client = rows.head(3).copy()
    client["hist_item_ids"] = [list(map(int, v)) for v in client["hist_item_ids"]]
    client["hist_category_ids"] = [list(map(int, v)) for v in client["hist_category_ids"]]
    client.loc[client.index[0], "title"] = "Brandnew solar waterproof tent limited edition"
    client.loc[client.index[1], ["hist_item_ids", "hist_category_ids"]] = pd.Series([[], []]).to_numpy()
    scores = model.predict(client)
    assert scores.notna().all().all() and len(scores) == 3
    # the first row scores differently once its title changed; the third is untouched
    assert scores.iloc[0]["click"] != pytest.approx(served.iloc[0]["click"], abs=1e-7)
    assert scores.iloc[2]["click"] == pytest.approx(served.iloc[2]["click"], abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_your_own_files_with_histories(project, fmt):
    """User data may carry histories too: parquet list columns, or JSON lists in a CSV."""
    import numpy as np

    from mtl.config import SyntheticConfig
    from mtl.data.ingest import synthetic

    log = synthetic.generate(SyntheticConfig(rows=20_000, users=1_500, items=800, categories=20, brands=40,
                                             history_length=8, titles=False))
    log = log.drop(columns=["p_click", "p_add_to_cart", "p_purchase"])
    path = project / "data" / "external" / f"mine.{fmt}"
    path.parent.mkdir(parents=True)
    if fmt == "csv":
        for c in ("hist_item_ids", "hist_category_ids"):
            log[c] = [json.dumps(np.asarray(v).tolist()) for v in log[c]]
        log.to_csv(path, index=False)
    else:
        log.assign(**{c: log[c].map(lambda v: np.asarray(v, dtype=np.int64)).astype(object)
                      for c in ("hist_item_ids", "hist_category_ids")}).to_parquet(path, index=False)
    set_params(project, {
        "data.source": f"data/external/mine.{fmt}", "data.schema.truth": {},
        "data.schema.sequence": {"hist_item_ids": "item_id", "hist_category_ids": "category_id"},
        "features.sequence.max_length": 8, "evaluation.baselines": False,
        # CSV categoricals arrive as text: the numeric ranges params.yaml puts on hour and weekday do not apply
        "validation.columns": {"price": {"min": 0}, "position": {"min": 1}},
    })
    cfg = load_config(project / "params.yaml")
    paths = Paths.at(project)
    for name in ("generate", "validate", "preprocess", "train", "score"):
        stagelist.functions()[name](cfg, paths)
    from mtl.data.features.shards import open_split

    seq = open_split(paths.split_dir("train")).all().seq
    assert seq.shape[1:] == (2, 8) and (seq[:, 0, 0] > 0).mean() > 0.5  # histories arrived, newest first
    assert ((seq[:, 0] < 0) == (seq[:, 1] < 0)).all()  # aligned
    scores = pd.read_parquet(paths.predictions_file)
    assert len(scores) and scores.notna().all().all()
