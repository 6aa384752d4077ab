"""The catalog of every path the pipeline reads or writes, in numbered layers.

The numbers make the one-way flow visible: each stage reads only lower-numbered layers. The
stage list (mtl/stagelist.py, from which dvc.yaml is generated) declares the same paths as each
stage's deps and outs; tests/code/test_stagelist.py checks that every one of them is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Folders that hold a copy of a project to run its pipeline on the project's behalf: DVC's
# temporary and queued experiments (.dvc/tmp/exps/...) and this project's run workspaces
# (.mtl/runs/RUN). They share the project's stores (MLflow, the registry's locks, the Optuna
# study, quarantine) and its users' files; only the pipeline's outputs are their own.
WORKSPACE_PARENTS = ((".dvc", "tmp", "exps"), (".mtl", "runs"))


def home_of(root: Path) -> Path:
    """The project ``root`` works for: itself, or the project holding it as a workspace."""
    parts = root.parts
    for marker in WORKSPACE_PARENTS:
        for i in range(1, len(parts) - len(marker) + 1):
            if parts[i:i + len(marker)] == marker:
                return Path(*parts[:i])
    return root


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def at(cls, root: str | Path = ".") -> "Paths":
        return cls(Path(root).resolve())

    @property
    def home(self) -> Path:
        """The project whose stores and files this workspace uses (``root`` unless it is a
        workspace of another: a DVC experiment's copy, an Airflow run's workspace)."""
        return home_of(self.root)

    def resolve(self, path: str | Path) -> Path:
        """A path from params.yaml: as given when absolute, else in the project (``home``), where
        the user's files are; a workspace holds only what git tracks."""
        path = Path(path)
        return path if path.is_absolute() else self.home / path

    # 01 raw: the impression log the pipeline starts from (generated, or ingested from the user's files)
    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "01_raw"

    @property
    def raw_file(self) -> Path:
        return self.raw_dir / "impressions.parquet"

    @property
    def raw_manifest(self) -> Path:
        return self.raw_dir / "manifest.json"

    # 02 validation: GX result and Data Docs
    @property
    def validation_dir(self) -> Path:
        return self.root / "data" / "02_validation"

    @property
    def validation_result(self) -> Path:
        return self.validation_dir / "result.json"

    @property
    def data_docs_dir(self) -> Path:
        return self.validation_dir / "data_docs"

    @property
    def validation_passed(self) -> Path:
        """Written only when validation passes; preprocessing depends on it. Unlike result.json it
        does not change when only the report does (new drift figures, a new champion), so a
        re-validated batch is not preprocessed and retrained again."""
        return self.validation_dir / "passed.json"

    # 03 features: fitted transform and training-ready arrays per split
    @property
    def features_dir(self) -> Path:
        return self.root / "data" / "03_features"

    @property
    def transform_file(self) -> Path:
        return self.features_dir / "transform.json"

    def split_dir(self, split: str) -> Path:
        return self.features_dir / split

    @property
    def test_raw_file(self) -> Path:
        """Raw (untransformed) test rows: what a served model receives, used to score champions."""
        return self.features_dir / "test_raw.parquet"

    # 04 model
    @property
    def model_dir(self) -> Path:
        return self.root / "data" / "04_model"

    @property
    def model_file(self) -> Path:
        return self.model_dir / "model.pt"

    @property
    def train_state(self) -> Path:
        """Per-epoch training state of the current run, so a killed `train` resumes; removed on success."""
        return self.model_dir / "checkpoints" / "train_state.pt"

    @property
    def curves_dir(self) -> Path:
        """The training curves, one JSON file per series (a DVC plot)."""
        return self.model_dir / "curves"

    @property
    def baseline_dir(self) -> Path:
        return self.model_dir / "baseline"

    @property
    def baseline_model(self) -> Path:
        return self.baseline_dir / "model.pt"

    @property
    def baseline_info(self) -> Path:
        return self.baseline_dir / "baseline.json"

    @property
    def gbdt_scores(self) -> Path:
        """Boosted trees' scores of the test rows, per task (a panel's baselines)."""
        return self.baseline_dir / "gbdt_scores.parquet"

    @property
    def train_info(self) -> Path:
        return self.model_dir / "train.json"

    # 05 evaluation
    @property
    def evaluation_dir(self) -> Path:
        return self.root / "data" / "05_evaluation"

    @property
    def metrics_file(self) -> Path:
        return self.evaluation_dir / "metrics.json"

    @property
    def summary_file(self) -> Path:
        """The headline figures per task: the DVC metrics experiments are compared on."""
        return self.evaluation_dir / "summary.json"

    @property
    def predictions_file(self) -> Path:
        return self.evaluation_dir / "test_predictions.parquet"

    @property
    def plots_dir(self) -> Path:
        return self.evaluation_dir / "plots"

    @property
    def calibration_dir(self) -> Path:
        return self.evaluation_dir / "calibration"

    # 06 promotion
    @property
    def promotion_dir(self) -> Path:
        return self.root / "data" / "06_promotion"

    @property
    def baseline_predictions_file(self) -> Path:
        return self.root / "data" / "05_evaluation" / "baseline_predictions.parquet"

    def task_eval_dir(self, task: str) -> Path:
        """One task's evaluation (the `evaluate_task@N` stage): metrics.json and its plot points."""
        return self.root / "data" / "05_evaluation" / "tasks" / task

    @property
    def gate_file(self) -> Path:
        """The gate's verdict against the champion of the time (the `gate` stage)."""
        return self.promotion_dir / "gate.json"

    @property
    def decision_file(self) -> Path:
        return self.promotion_dir / "decision.json"

    @property
    def model_card_md(self) -> Path:
        return self.promotion_dir / "model_card.md"

    @property
    def model_card_html(self) -> Path:
        return self.promotion_dir / "model_card.html"

    # MLflow defaults: a SQLite store and an artifact folder inside the project
    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    # `mtl tune`: the Optuna study (a rerun resumes it) and the best settings found, as an overlay
    # of params.yaml that `mtl tune --apply` writes into it. Outside data/: not pipeline outputs.
    @property
    def optuna_db(self) -> Path:
        return self.home / "optuna.db"

    @property
    def tune_best(self) -> Path:
        return self.root / "tune_best.yaml"
