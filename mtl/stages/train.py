"""Stage ``train``: the multi-task model, tracked as one MLflow run (params, per-epoch metrics,
the served model), resumable after a killed process; under torchrun every rank trains and rank 0
alone tracks and writes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from mtl.config import Config
from mtl.handoffs import TrainInfo
from mtl.paths import Paths
from mtl.stages.common import read_json


@dataclass
class Inputs:
    """What training reads: the fitted transform and the shards of the two training splits."""

    transform: object  # mtl.data.features.Transform
    train: object  # a lazily read split
    validation: object  # the validation split, in memory
    spec: object  # mtl.models.layers.InputSpec
    text_table: object

    @classmethod
    def open(cls, cfg: Config, paths: Paths) -> Inputs:
        from mtl.data import features
        from mtl.data.features.shards import open_split
        from mtl.models.layers import InputSpec

        transform = features.Transform.load(paths.transform_file)
        return cls(transform, open_split(paths.split_dir("train")), open_split(paths.split_dir("validation")).all(),
                   InputSpec.from_transform(transform, cfg.data.schema.scenario), transform.text_table())


def run(cfg: Config, paths: Paths) -> TrainInfo | None:
    """Train, track and write train.json; None on a worker rank under torchrun."""
    import mlflow

    from mtl import tracking
    from mtl.training import loop
    from mtl.training.checkpoint import load_training_state

    data = Inputs.open(cfg, paths)
    fingerprint = run_fingerprint(data.transform, cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        # A worker rank under torchrun: train its share in lockstep; rank 0 alone tracks and writes.
        loop.train(data.train, data.validation, data.spec, data.transform.tasks, cfg,
                   resume=loop.Resume(paths.train_state, fingerprint), text_table=data.text_table)
        return None
    experiment_id = tracking.configure(paths)
    saved = load_training_state(paths.train_state, fingerprint)  # loaded once: read here and by the loop
    previous = resumable_run(saved)
    # system metrics: CPU, memory, disk and (with pynvml) GPU use beside the training curves; its
    # monitor's start/stop notices are INFO lines in every run's output otherwise
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    with mlflow.start_run(**({"run_id": previous} if previous else {"experiment_id": experiment_id}),
                          log_system_metrics=True) as run:
        _log_inputs(cfg, paths, data, run)
        resume = loop.Resume(paths.train_state, fingerprint, run.info.run_id, replay=previous is None, saved=saved)
        result = loop.train(data.train, data.validation, data.spec, data.transform.tasks, cfg,
                            on_epoch=_epoch_logger(cfg.train.epochs), resume=resume, text_table=data.text_table)
        outcome = _log_outcome(cfg, paths, data, result)
    info = TrainInfo(run_id=run.info.run_id, experiment_id=experiment_id, **outcome)
    info.write(paths.train_info)
    paths.train_state.unlink(missing_ok=True)  # finished: the next run starts fresh
    print(
        f"trained {cfg.model.architecture} on {result.device}: best epoch {result.best_epoch}/{len(result.history)}, "
        f"{result.samples_per_second:,.0f} samples/s; MLflow run {run.info.run_id}"
    )
    return info


def _log_inputs(cfg: Config, paths: Paths, data: Inputs, run) -> None:
    """Tags, params and the validation outcome, before training starts."""
    import mlflow

    from mtl import tracking

    validation = read_json(paths.validation_result, "validate")
    mlflow.set_tags(tracking.lineage_tags(paths) | tracking.validation_tags(validation) | {
        "mtl.transform_sha256": data.transform.fingerprint(),
        "mtl.data_source": cfg.data.source,
    })
    # a resumed run has its params already (MLflow refuses to log one twice)
    mlflow.log_params({k: v for k, v in tracking.flat_params(cfg).items() if k not in run.data.params})
    mlflow.log_dict(validation, "validation/result.json")
    mlflow.log_metrics(tracking.validation_metrics(validation))
    if not run.inputs.dataset_inputs:  # a resumed run logged them already
        _log_datasets(cfg, paths, data.transform)


# The splits as MLflow names the context a dataset was used in.
SPLIT_CONTEXTS = {"train": "training", "validation": "validation", "test": "testing"}


def _log_datasets(cfg: Config, paths: Paths, transform) -> None:
    """The data the run learnt from, as MLflow datasets (the run's Datasets panel): one per
    split, its source the user's files (or the generated log), its digest DVC's hash of
    data/01_raw, tagged with its row count and how the rows were split."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from mtl import tracking

    raw_md5 = tracking.dvc_hashes(paths.root).get("data/01_raw", "")
    where = paths.raw_file if cfg.data.is_synthetic else paths.resolve(cfg.data.source_path)
    name = "synthetic" if cfg.data.is_synthetic else Path(cfg.data.source_path).name
    rows = transform.split.get("rows", {})
    for split, context in SPLIT_CONTEXTS.items():
        digest = hashlib.sha256(f"{raw_md5}:{split}".encode()).hexdigest()[:32]  # MLflow keeps 36 characters
        with warnings.catch_warnings():
            # MLflow registers its local-file source under two schemes ("" and "file") and warns
            # that a path matches both; they are the same class of source.
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            source = resolve_dataset_source(str(where))
        dataset = MetaDataset(source, name=f"{name}.{split}", digest=digest)
        mlflow.log_input(dataset, context=context, tags={
            "rows": str(rows.get(split, "")), "split": str(transform.split.get("method", "")),
            "dvc_md5": raw_md5 or "(not run through dvc)"})


def _epoch_logger(epochs: int):
    import mlflow

    def on_epoch(rec: dict) -> None:
        mlflow.log_metrics({k: v for k, v in rec.items() if k != "epoch" and v is not None}, step=rec["epoch"])
        vals = ", ".join(f"{k[4:]} {v:.4f}" for k, v in rec.items() if k.startswith("val_") and v is not None)
        print(f"epoch {rec['epoch']}/{epochs}: {vals}", flush=True)

    return on_epoch


def _log_outcome(cfg: Config, paths: Paths, data: Inputs, result) -> dict:
    """Save the model, choose its thresholds, log diagnostics and the served model; the rest of
    the training summary (TrainInfo's fields but the run's)."""
    import mlflow

    from mtl.serving.package import log_pyfunc
    from mtl.training.checkpoint import save_model
    from mtl.training.diagnostics import expert_utilisation

    if result.resumed_from:
        print(f"resumed from the checkpoint of epoch {result.resumed_from - 1} (a killed run)", flush=True)
        mlflow.set_tag("mtl.resumed_from_epoch", result.resumed_from - 1)
    scores = validation_scores(result.model, data.validation, data.transform, data.text_table)
    calibration = quantile_calibration(scores, data.validation, data.transform)
    save_model(paths.model_file, result.model, data.spec, cfg.model, calibration)
    mlflow.log_metrics({f"{key}_{task}": value for task, a in calibration.items() for key, value in
                        (("quantile_adjustment", a["c"]), ("val_coverage_before", a["coverage"][0]),
                         ("val_coverage_after", a["coverage"][1]))})
    thresholds = validation_thresholds(scores, data.validation, data.transform)
    mlflow.log_metrics({f"threshold_{task}": t for task, t in thresholds.items() if t is not None})
    utilisation = expert_utilisation(result.model, data.validation, text_table=data.text_table)
    if utilisation:
        mlflow.log_dict(utilisation, "diagnostics/expert_utilisation.json")
        mlflow.log_metrics({f"expert_util_{task}_{e}": w for task, ws in utilisation.items()
                            for e, w in enumerate(ws)})
    mlflow.log_metrics({"best_epoch": result.best_epoch, "train_seconds": result.seconds,
                        "train_samples_per_second": result.samples_per_second})
    _write_curves(paths, result.history)
    model_info = log_pyfunc(paths)
    return {
        "model_uri": model_info.model_uri,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds": round(result.seconds, 2),
        "samples_per_second": round(result.samples_per_second),
        "device": result.device,
        "thresholds": thresholds,
        "quantile_calibration": calibration,
        "history": result.history,
    }


def _write_curves(paths: Paths, history: list[dict]) -> None:
    """The DVC plot files of the training curves (the folder rewritten), and their picture on the run."""
    import shutil

    import matplotlib.pyplot as plt
    import mlflow

    from mtl.stages.common import write_json
    from mtl.training import curves

    drawn = curves.series(history)
    if paths.curves_dir.exists():
        shutil.rmtree(paths.curves_dir)
    for name, points in drawn.items():
        write_json(paths.curves_dir / f"{name}.json", points)  # type: ignore[arg-type]
    fig = curves.figure(drawn)
    mlflow.log_figure(fig, "training/curves.png")
    plt.close(fig)


def validation_scores(model, val_arrays, transform, text_table):
    """The model's scores of the validation split, on the scale the score stage writes
    (probabilities, label units), before any quantile calibration: what the thresholds and the
    calibration are both chosen on, predicted once."""
    from mtl.scoring import scores_from_raw
    from mtl.training.loop import predict_raw

    return scores_from_raw(predict_raw(model, val_arrays, text_table=text_table), transform)


def validation_thresholds(scores, val_arrays, transform) -> dict[str, float | None]:
    """Each binary task's F1-maximising threshold, chosen on the validation split (so its test
    metrics are out of sample) from its :func:`validation_scores`."""
    from mtl.evaluation.metrics import f1_thresholds

    return f1_thresholds(scores.to_numpy(), val_arrays.labels, val_arrays.mask, transform.tasks)


def quantile_calibration(scores, val_arrays, transform) -> dict[str, dict]:
    """Each quantile (pinball) task's conformal adjustment, chosen on the validation split from
    its :func:`validation_scores` (mtl/evaluation/forecast.py: conformal_adjustment): a quantile
    head trained to early stopping on a shared encoder rarely covers at its nominal rate, and a
    planner stocks to the P90 as if it did. Saved with the model; the scorer applies it. A task
    it would not help is left out."""
    import numpy as np

    from mtl.evaluation.forecast import conformal_adjustment

    out = {}
    for j, task in enumerate(transform.tasks):
        if task.loss != "pinball":
            continue
        rows = np.asarray(val_arrays.mask[:, j], dtype=bool)
        scale = transform.targets[task.name]
        actual = np.asarray(val_arrays.labels[rows, j], dtype=np.float64) * scale["std"] + scale["mean"]
        adjustment = conformal_adjustment(actual, scores[task.name].to_numpy()[rows], task.quantile)
        if adjustment is not None:
            out[task.name] = adjustment
    return out


def run_fingerprint(transform, cfg: Config) -> str:
    """What a resumed run must share with the killed one: data, model and training settings."""
    train = cfg.train.model_dump(mode="json", exclude={"progress", "num_threads"})
    payload = {"transform": transform.fingerprint(), "model": cfg.model.model_dump(mode="json"), "train": train}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def resumable_run(saved: dict | None) -> str | None:
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
