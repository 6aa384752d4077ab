"""Stage ``baseline``: the single-task yardstick, one independent model per task on the same
features and training settings, against which each task's gain from multi-task learning is
measured."""

from __future__ import annotations

import shutil

from mtl.config import Config
from mtl.paths import Paths
from mtl.stages.common import write_json


def run(cfg: Config, paths: Paths) -> dict:
    from mtl.stages.train import Inputs, validation_thresholds
    from mtl.training import loop
    from mtl.training.checkpoint import save_model

    if paths.baseline_dir.exists():
        shutil.rmtree(paths.baseline_dir)
    paths.baseline_dir.mkdir(parents=True)
    if not cfg.evaluation.baselines:
        info = {"enabled": False, "reason": "evaluation.baselines is false"}
        write_json(paths.baseline_info, info)
        print("baseline: skipped (evaluation.baselines: false)")
        return info
    data = Inputs.open(cfg, paths)
    base_cfg = cfg.single_task_baseline()
    result = loop.train(data.train, data.validation, data.spec, data.transform.tasks, base_cfg,
                        text_table=data.text_table)
    save_model(paths.baseline_model, result.model, data.spec, base_cfg.model)
    info = {"enabled": True, "architecture": "single_task", "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "thresholds": validation_thresholds(result.model, data.validation, data.transform, data.text_table),
            "history": result.history}
    write_json(paths.baseline_info, info)
    print(f"baseline: single_task trained in {result.seconds:.0f} s (best epoch {result.best_epoch})")
    return info
