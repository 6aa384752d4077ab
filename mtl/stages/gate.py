"""Stage ``gate``: the first half of promotion. Judges the candidate against the current champion
(or the floors alone without one) and writes data/06_promotion/gate.json; promotion runs only on
a pass. A failed gate is an outcome, not an error: the stage succeeds and says why."""

from __future__ import annotations

from mtl.config import Config
from mtl.handoffs import TrainInfo, Verdict
from mtl.paths import Paths
from mtl.stages.common import read_json


def candidate(cfg: Config, paths: Paths):
    """The candidate as the promotion service sees it, from train.json and metrics.json."""
    from mtl.promotion.service import Candidate

    info = TrainInfo.read(paths.train_info)
    return Candidate(name=cfg.gate.model_name, run_id=info.run_id, model_uri=info.model_uri,
                     metrics=read_json(paths.metrics_file, "evaluate")["tasks"],
                     rows_file=paths.test_raw_file, scores_file=paths.predictions_file,
                     panel_file=paths.raw_file if cfg.data.panel is not None else None)


def run(cfg: Config, paths: Paths) -> Verdict:
    import mlflow

    from mtl import tracking
    from mtl.promotion import service

    tracking.configure(paths)
    judged = candidate(cfg, paths)
    verdict = service.verdict(cfg, judged)
    verdict.write(paths.gate_file)
    with mlflow.start_run(run_id=judged.run_id):
        mlflow.log_dict(verdict.to_dict(), "promotion/gate.json")
        mlflow.set_tag("mtl.gate", "passed" if verdict.promote else "failed")
    print(f"gate: {'PASSED' if verdict.promote else 'FAILED'}: {verdict.summary}")
    return verdict
