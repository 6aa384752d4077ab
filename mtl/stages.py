"""The six pipeline stages: the I/O shell around the pure functions in mtl.data, mtl.training,
mtl.evaluation and mtl.promotion. Each reads only what earlier stages wrote (see mtl/paths.py)
and is run by `mtl <stage>`, which is what dvc.yaml calls.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from mtl.config import Config
from mtl.paths import Paths


class ValidationFailed(RuntimeError):
    """The raw data broke the data contract; the message is the human summary."""


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def _read_json(path: Path, produced_by: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `mtl {produced_by}` (or `dvc repro`) first")
    return json.loads(path.read_text())


def read_raw(paths: Paths) -> pd.DataFrame:
    if not paths.raw_file.is_file():
        raise FileNotFoundError(f"{paths.raw_file} is missing: run `mtl generate` first")
    return pd.read_parquet(paths.raw_file)


# ---------------------------------------------------------------------------------------------


def generate(cfg: Config, paths: Paths) -> dict:
    from mtl.data.sources import materialise_raw

    manifest = materialise_raw(cfg, paths)
    print(f"raw data: {manifest['rows']:,} rows from {manifest['source']} -> {paths.raw_file}")
    return manifest


def validate(cfg: Config, paths: Paths) -> dict:
    from mtl.data.sources import check_source_unchanged
    from mtl.data.validation import validate_frame

    check_source_unchanged(cfg, paths)
    df = read_raw(paths)
    if paths.data_docs_dir.exists():
        shutil.rmtree(paths.data_docs_dir)
    report = validate_frame(df, cfg, docs_dir=paths.data_docs_dir)
    result = report.to_dict()
    _write_json(paths.validation_result, result)
    print(report.summary())
    print(f"data docs: {paths.data_docs_dir / 'index.html'}")
    if not report.success:
        raise ValidationFailed(
            f"validation of {paths.raw_file} failed; nothing downstream ran and no model was registered.\n"
            + report.summary()
        )
    return result


def preprocess(cfg: Config, paths: Paths) -> dict:
    from mtl.data.preprocess import build

    result = _read_json(paths.validation_result, "validate")
    if not result.get("success"):
        raise ValidationFailed(f"{paths.validation_result} records a failed validation; fix the data first")
    if not paths.raw_file.is_file():
        raise FileNotFoundError(f"{paths.raw_file} is missing: run `mtl generate` first")
    summary = build(paths.raw_file, cfg, paths.features_dir)
    rows = summary["rows"]
    print(
        f"split ({summary['split']['method']}): " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"; transform {summary['transform_sha256'][:12]} -> {paths.transform_file} "
        f"({sum(rows.values()) / summary['seconds']['total']:,.0f} rows/s)"
    )
    return summary


def train(cfg: Config, paths: Paths) -> dict:
    import mlflow

    from mtl import tracking
    from mtl.data import features
    from mtl.data.shards import open_split
    from mtl.models.layers import InputSpec
    from mtl.training import loop
    from mtl.training.checkpoint import save_model

    transform = features.Transform.load(paths.transform_file)
    train_arrays = open_split(paths.split_dir("train"))
    val_arrays = open_split(paths.split_dir("validation")).all()
    from mtl.training.guards import check_label_leaks

    check_label_leaks(train_arrays.load(0), transform.cat_inputs, transform.num_inputs, transform.tasks,
                      cfg.train.leak_threshold)
    scenario = cfg.data.schema.scenario
    spec = InputSpec.from_tasks(transform.cardinalities, transform.n_numeric, transform.tasks,
                                transform.cat_inputs.index(scenario) if scenario in transform.cat_inputs else -1)
    fingerprint = _run_fingerprint(transform, cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        # A worker rank under torchrun: train its share in lockstep; rank 0 alone tracks and writes.
        loop.train(train_arrays, val_arrays, spec, transform.tasks, cfg, state_path=paths.train_state,
                   fingerprint=fingerprint)
        return {}
    experiment_id = tracking.configure(paths)
    validation = _read_json(paths.validation_result, "validate")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags(tracking.lineage_tags(paths) | {
            "mtl.validation": "passed" if validation.get("success") else "failed",
            "mtl.transform_sha256": transform.fingerprint(),
            "mtl.data_source": cfg.data.source,
        })
        mlflow.log_params(_flat_params(cfg))
        mlflow.log_dict(validation, "validation/result.json")

        def on_epoch(rec: dict) -> None:
            mlflow.log_metrics({k: v for k, v in rec.items() if k != "epoch" and v is not None}, step=rec["epoch"])
            vals = ", ".join(f"{k[4:]} {v:.4f}" for k, v in rec.items() if k.startswith("val_") and v is not None)
            print(f"epoch {rec['epoch']}/{cfg.train.epochs}: {vals}", flush=True)

        result = loop.train(train_arrays, val_arrays, spec, transform.tasks, cfg, on_epoch=on_epoch,
                            state_path=paths.train_state, fingerprint=fingerprint)
        if result.resumed_from:
            print(f"resumed from the checkpoint of epoch {result.resumed_from - 1} (a killed run)", flush=True)
            mlflow.set_tag("mtl.resumed_from_epoch", result.resumed_from - 1)
        save_model(paths.model_file, result.model, spec, cfg.model)
        from mtl.training.diagnostics import expert_utilisation

        utilisation = expert_utilisation(result.model, val_arrays)
        if utilisation:
            mlflow.log_dict(utilisation, "diagnostics/expert_utilisation.json")
            mlflow.log_metrics({f"expert_util_{task}_{e}": w for task, ws in utilisation.items()
                                for e, w in enumerate(ws)})
        mlflow.log_metrics({
            "best_epoch": result.best_epoch,
            "train_seconds": result.seconds,
            "train_samples_per_second": result.samples_per_second,
        })
        model_info = _log_pyfunc(paths, cfg)
    info = {
        "run_id": run.info.run_id,
        "experiment_id": experiment_id,
        "model_uri": model_info.model_uri,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds": round(result.seconds, 2),
        "samples_per_second": round(result.samples_per_second),
        "device": result.device,
        "history": result.history,
    }
    _write_json(paths.train_info, info)
    paths.train_state.unlink(missing_ok=True)  # finished: the next run starts fresh
    print(
        f"trained {cfg.model.architecture} on {result.device}: best epoch {result.best_epoch}/{len(result.history)}, "
        f"{result.samples_per_second:,.0f} samples/s; MLflow run {run.info.run_id}"
    )
    return info


def _run_fingerprint(transform, cfg: Config) -> str:
    """What a resumed run must share with the killed one: data, model and training settings."""
    import hashlib

    train = cfg.train.model_dump(mode="json", exclude={"progress", "num_threads"})
    payload = {"transform": transform.fingerprint(), "model": cfg.model.model_dump(mode="json"), "train": train}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _flat_params(cfg: Config) -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(node, list) and node and isinstance(node[0], dict) and "name" in node[0]:
            for item in node:
                walk(f"{prefix}.{item['name']}", {k: v for k, v in item.items() if k != "name"})
        else:
            flat[prefix] = json.dumps(node) if isinstance(node, (list, dict)) else str(node)

    walk("", cfg.model_dump(mode="json", by_alias=True))
    return flat


def _log_pyfunc(paths: Paths, cfg: Config):
    """Log the served form of the model: raw rows in, one score column per task out."""
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    from mtl.scoring import Scorer

    example = pd.read_parquet(paths.test_raw_file).head(5)
    scorer = Scorer.load(paths.transform_file, paths.model_file)
    example = example[scorer.input_columns]
    signature = infer_signature(example, scorer.predict(example))
    # MLflow warns about integer id columns and predict() type hints; both are deliberate here
    # (ids are categorical, and the schema check lives in Scorer.predict).
    warnings.filterwarnings("ignore", message=r".*Inferred schema contains integer column")
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).parent / "serving" / "pyfunc_model.py"),
        artifacts={"transform": str(paths.transform_file), "model": str(paths.model_file)},
        code_paths=[str(Path(__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=_serving_requirements(),
    )


def _serving_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "torch", "pandas", "numpy", "pyarrow", "pydantic", "PyYAML")]


def evaluate(cfg: Config, paths: Paths) -> dict:
    import mlflow

    from mtl import tracking
    from mtl.evaluation.evaluate import evaluate_scores, format_table, roc_plots
    from mtl.scoring import Scorer

    info = _read_json(paths.train_info, "train")
    rows = pd.read_parquet(paths.test_raw_file)
    scores = Scorer.load(paths.transform_file, paths.model_file).predict(rows)
    result = evaluate_scores(scores, rows, cfg)
    payload = {"run_id": info["run_id"], "test_rows": len(rows), "tasks": result}
    if paths.plots_dir.exists():
        shutil.rmtree(paths.plots_dir)
    for task, points in roc_plots(scores, rows, cfg).items():
        _write_json(paths.plots_dir / f"roc_{task}.json", points)  # type: ignore[arg-type]
    scores.to_parquet(paths.predictions_file, index=False)
    _write_json(paths.metrics_file, payload)
    tracking.configure(paths)
    with mlflow.start_run(run_id=info["run_id"]):
        flat = {}
        for task, e in result.items():
            for k in ("auc", "logloss", "oracle_auc", "rmse", "mae", *(k for k in e if k.startswith("auc_given_"))):
                if e.get(k) is not None:
                    flat[f"test_{k}_{task}"] = e[k]
            for scen, se in e.get("scenarios", {}).items():
                for k in ("auc", "rmse"):
                    if se.get(k) is not None:
                        flat[f"test_{k}_{task}.{scen}"] = se[k]
        mlflow.log_metrics(flat)
        mlflow.log_artifact(str(paths.metrics_file), "evaluation")
        mlflow.log_artifacts(str(paths.plots_dir), "evaluation/plots")
    print(format_table(result))
    return payload


def promote(cfg: Config, paths: Paths) -> dict:
    import mlflow

    from mtl import tracking
    from mtl.evaluation.evaluate import evaluate_scores
    from mtl.promotion import registry
    from mtl.promotion.policy import decide

    info = _read_json(paths.train_info, "train")
    candidate = _read_json(paths.metrics_file, "evaluate")["tasks"]
    tracking.configure(paths)
    name = cfg.gate.model_name
    champion_version = registry.get_champion(name)
    payload: dict = {"model_name": name, "candidate_run_id": info["run_id"]}
    if champion_version is not None and champion_version.run_id == info["run_id"]:
        payload |= {"promote": False, "summary": f"already champion (version {champion_version.version})",
                    "tasks": [], "champion_version": champion_version.version}
        _write_json(paths.decision_file, payload)
        print(f"promotion: {payload['summary']}")
        return payload
    champion = None
    if champion_version is not None:
        # Judge the champion on the very rows the candidate was judged on, through its own
        # packaged transform: metrics from a different test split would not be comparable.
        rows = pd.read_parquet(paths.test_raw_file)
        champ_model = mlflow.pyfunc.load_model(f"models:/{name}@{registry.CHAMPION}")
        inputs = champ_model.metadata.get_input_schema().input_names()
        champion = evaluate_scores(champ_model.predict(rows[inputs]), rows, cfg)
        payload["champion_version"] = champion_version.version
    decision = decide(candidate, champion, {t.name: t.type for t in cfg.tasks}, cfg.gate)
    payload |= decision.to_dict()
    if decision.promote:
        tags = tracking.lineage_tags(paths) | {"mtl.run_id": info["run_id"]}
        for task, e in candidate.items():
            for k in ("auc", "rmse"):
                if e.get(k) is not None:
                    tags[f"test_{k}_{task}"] = f"{e[k]:.5f}"
        version = registry.register_and_promote(name, info["model_uri"], tags)
        payload["registered_version"] = version.version
    _write_json(paths.decision_file, payload)
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_dict(payload, "promotion/decision.json")
        mlflow.set_tag("mtl.promotion", "promoted" if decision.promote else "rejected")
    print(f"promotion: {decision.summary}" + (f" -> {name} version {payload['registered_version']} is @champion"
                                              if decision.promote else ""))
    return payload


STAGES = {
    "generate": generate,
    "validate": validate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "promote": promote,
}


def report(paths: Paths) -> str:
    """The end-of-run summary: per-task test AUC beside the oracle, and the promotion decision."""
    from mtl.evaluation.evaluate import format_table

    metrics = _read_json(paths.metrics_file, "evaluate")
    decision = json.loads(paths.decision_file.read_text()) if paths.decision_file.is_file() else None
    return format_table(metrics["tasks"], decision)
