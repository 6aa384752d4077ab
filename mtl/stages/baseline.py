"""Stage ``baseline``: the yardsticks of evaluation.baselines. single_task: one independent model
per task on the same features and training settings, against which each task's gain from
multi-task learning is measured; trees (a panel's): boosted trees per task on the same lag
features, the standard strong baseline of demand forecasting."""

from __future__ import annotations

import shutil

from mtl.config import Config
from mtl.paths import Paths
from mtl.stages.common import write_json


def run(cfg: Config, paths: Paths) -> dict:
    from mtl.stages.train import Inputs, quantile_calibration, validation_scores, validation_thresholds
    from mtl.training import loop
    from mtl.training.checkpoint import save_model

    if paths.baseline_dir.exists():
        shutil.rmtree(paths.baseline_dir)
    paths.baseline_dir.mkdir(parents=True)
    wanted = set(cfg.evaluation.baselines) & ({"single_task", "trees"} if cfg.data.panel else {"single_task"})
    if not wanted:
        info = {"enabled": False, "reason": "no baseline in evaluation.baselines applies"}
        write_json(paths.baseline_info, info)
        print(f"baseline: skipped (evaluation.baselines: {list(cfg.evaluation.baselines)})")
        return info
    data = Inputs.open(cfg, paths)
    info: dict = {"enabled": "single_task" in wanted}
    if "single_task" in wanted:
        base_cfg = cfg.single_task_baseline()
        result = loop.train(data.train, data.validation, data.spec, data.transform.tasks, base_cfg,
                            text_table=data.text_table)
        # calibrated as the candidate is: the gain compares two models, not one calibration
        scores = validation_scores(result.model, data.validation, data.transform, data.text_table)
        calibration = quantile_calibration(scores, data.validation, data.transform)
        save_model(paths.baseline_model, result.model, data.spec, base_cfg.model, calibration)
        info |= {"architecture": "single_task", "best_epoch": result.best_epoch, "seconds": round(result.seconds, 2),
                 "thresholds": validation_thresholds(scores, data.validation, data.transform),
                 "history": result.history}
        print(f"baseline: single_task trained in {result.seconds:.0f} s (best epoch {result.best_epoch})")
    if "trees" in wanted:
        info["gbdt_seconds"] = _gbdt(data, paths, cfg.train.seed)
        print(f"baseline: boosted trees per task in {info['gbdt_seconds']:.0f} s")
    write_json(paths.baseline_info, info)
    return info


def _gbdt(data, paths: Paths, seed: int) -> float:
    """A panel's second yardstick: boosted trees per task on the same features (the lag window
    summarised), scored on the test rows (mtl/evaluation/gbdt.py); returns the seconds it took."""
    import time

    from mtl.data.features.shards import open_split
    from mtl.evaluation import gbdt

    started = time.perf_counter()
    train, test = open_split(paths.split_dir("train")).all(), open_split(paths.split_dir("test")).all()
    t = data.transform
    scores = gbdt.fit_predict(train, test, t.tasks, t.targets, t.cardinalities, seed, validation=data.validation,
                              matrix=gbdt.summary(list(t.num_inputs), t.panel))
    scores.to_parquet(paths.gbdt_scores, index=False)
    return round(time.perf_counter() - started, 2)
