"""Stage ``score``: the raw test rows scored once, through the served-model path, by the
candidate and (when trained) the single-task baseline; every task's evaluation reads these."""

from __future__ import annotations

from mtl.config import Config
from mtl.paths import Paths
from mtl.handoffs import TrainInfo


def run(cfg: Config, paths: Paths) -> dict:
    import pandas as pd

    from mtl.scoring import Scorer

    info = TrainInfo.read(paths.train_info)
    rows = pd.read_parquet(paths.test_raw_file)
    paths.predictions_file.parent.mkdir(parents=True, exist_ok=True)
    Scorer.load(paths.transform_file, paths.model_file).predict(rows).to_parquet(paths.predictions_file, index=False)
    # Always written (DVC tracks it): without the single-task baseline, an empty table.
    baseline = (Scorer.load(paths.transform_file, paths.baseline_model).predict(rows)
                if paths.baseline_model.is_file() else pd.DataFrame())
    baseline.to_parquet(paths.baseline_predictions_file, index=False)
    print(f"scored {len(rows):,} test rows with the candidate of run {info.run_id}"
          + (" and the single-task baseline" if len(baseline.columns) else ""))
    return {"run_id": info.run_id, "test_rows": len(rows)}
