"""The pipeline's stages, declared once.

Each entry says what a stage runs, reads, writes and needs; the CLI's subcommands, the Airflow
DAG ``mtl_training`` and ``dvc.yaml`` are derived from this list (``mtl dvc-yaml`` writes the
file; a test fails when the checked-in one differs). A stage's code dependencies are not
written here at all: ``mtl.codedeps`` computes them from the stage function's imports, so they
cannot go stale. Adding a stage is a module in ``mtl/stages/`` plus one entry here.

Import-light (no torch, pandas or MLflow): the Airflow scheduler parses the DAG, which reads
this list, constantly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# An output or a metric: a path, or (path, DVC options such as cache: false or a plot's axes).
Out = str | tuple[str, dict]
NOT_CACHED = {"cache": False}


@dataclass(frozen=True)
class Stage:
    name: str  # the DVC stage and the Airflow task id
    function: str  # "module:function" (mtl.stages.NAME:run), called as function(cfg, paths[, task])
    help: str  # the CLI's description
    summary: str = ""  # one line: the CLI's short help and the README's stage table
    deps: tuple[str, ...] = ()  # data and config files it reads (its code is computed)
    params: tuple[str, ...] = ()  # the params.yaml keys it reads
    outs: tuple[Out, ...] = ()
    metrics: tuple[Out, ...] = ()
    plots: tuple[Out, ...] = ()
    # Run once per params.yaml task (DVC foreach, an Airflow mapped task); the command takes
    # the task's name, and paths may use ${item.name}.
    per_task: bool = False
    gpu: bool = False  # runs in the GPU pool (and queue, under Celery)
    retries: int | None = None  # None: the DAG's default
    # When Airflow reruns it although DVC sees nothing changed: "always", or "source_changed"
    # (new bytes in the user's files, which DVC does not track).
    force: str | None = None
    note: str = ""  # why, for dvc.yaml's readers (written above the stage as a comment)
    extra: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The CLI subcommand: `mtl evaluate-task`, from stage evaluate_task."""
        return self.name.replace("_", "-")

    def load(self):
        """The stage function (imported now: heavy imports stay out of the DAG's parse)."""
        import importlib

        module, function = self.function.split(":")
        return getattr(importlib.import_module(module), function)

    def dvc_cmd(self) -> str:
        return f"mtl {self.command}" + (" ${item.name}" if self.per_task else "")


STAGES: tuple[Stage, ...] = (
    Stage(
        "generate", "mtl.stages.generate:run",
        summary="the raw log: generated, or ingested from your files (only read)",
        help="Produce data/01_raw: generate a synthetic dataset (data.source: synthetic; data.synthetic.kind: "
        "impressions, the default impression log, or supply_chain, a daily inventory panel) or ingest the "
        "schema's columns through a dataset adapter (files, ali_ccp, aliexpress, census_income, m5) from data.path "
        "(your files are only read).",
        # the whole section: DVC stops on a tracked key params.yaml lacks, and data.synthetic is
        # there only for a generated log (a new split reruns the ingest too, but its output is
        # unchanged, so DVC reruns nothing after it for that)
        params=("data",),
        outs=("data/01_raw",),
        # DVC tracks data/01_raw, not the user's files: new bytes in the same files (a retraining
        # window that moved) would not rerun it by itself.
        force="source_changed",
    ),
    Stage(
        "validate", "mtl.stages.validate:run",
        summary="the data contract: the GX suite, the leakage guard, drift against the champion; a bad batch is quarantined",
        help="Check data/01_raw against the data contract: a Great Expectations suite derived from data.schema, "
        "tasks and validation (columns, types, null policy, label domains, ranges, cardinality, funnel rules, "
        "duplicate keys, time window, row floor) plus validation.expectations; the label-leakage guard; drift "
        "against the current champion's training statistics (warn/fail levels). Writes "
        "data/02_validation/result.json and Data Docs HTML; on failure moves the batch and its report to "
        "validation.quarantine and exits non-zero, stopping the chain.",
        deps=("data/01_raw", "configs/expectations.yaml"),
        params=("data.schema", "data.panel", "tasks", "validation", "gate.model_name"),
        # passed.json is written only when the batch passes: what preprocess waits for
        outs=(("data/02_validation/data_docs", NOT_CACHED), ("data/02_validation/passed.json", NOT_CACHED)),
        metrics=(("data/02_validation/result.json", NOT_CACHED),),
        retries=0,  # bad data does not get better on a retry
        note="Also reads the current champion's transform from the MLflow registry (the drift reference):\n"
             "a batch is judged against the champion of the run that first validates it.",
    ),
    Stage(
        "preprocess", "mtl.stages.preprocess:run",
        summary="split, fit the feature transform on the training split, write every split's shards",
        help="Split train/validation/test (the data's split column, else whole days of data.schema.time, else "
        "seeded random), fit the feature transform (params `features`) on the training split, and stream "
        "memory-mapped shards of every split to data/03_features.",
        deps=("data/01_raw", "data/02_validation/passed.json"),
        params=("data.schema", "data.panel", "data.split", "features", "tasks"),
        outs=("data/03_features",),
    ),
    Stage(
        "baseline", "mtl.stages.baseline:run",
        summary="the baselines: single-task models (each task's multi-task gain) and a panel's boosted trees",
        help="Train the baselines of evaluation.baselines into data/04_model/baseline: single_task (one model per "
        "task, the same features and training settings), the yardstick of each task's multi-task gain, and for "
        "a panel trees (boosted trees per task on the same lag features); skipped when none applies.",
        deps=("data/03_features",),
        # what single_task reads of the model section: changing experts or gates does not retrain it
        params=("model.embedding_dim", "model.expert_hidden", "model.tower_hidden", "model.dropout", "model.norm",
                "model.sequence", "model.text_dim", "train", "tasks", "evaluation.baselines"),
        outs=("data/04_model/baseline",),
        gpu=True,
    ),
    Stage(
        "train", "mtl.stages.train:run",
        summary="the multi-task model with early stopping, tracked as an MLflow run",
        help="Train the multi-task model (model.architecture) with early stopping on validation; log params, "
        "per-epoch metrics and the model to MLflow; write data/04_model.",
        deps=("data/03_features",),
        params=("model", "train", "tasks"),
        # train.json is not cached: caching disables DVC's run-cache for the stage, which would
        # otherwise "restore" a model without creating its MLflow run (evaluate and promote too).
        outs=("data/04_model/model.pt", ("data/04_model/train.json", NOT_CACHED)),
        plots=(("data/04_model/curves", {"cache": False, "x": "epoch", "y": "value"}),),
        gpu=True,
    ),
    Stage(
        "score", "mtl.stages.score:run",
        summary="the raw test rows scored through the served-model path (candidate and baseline)",
        help="With --input and --output: batch-score a parquet or CSV file (or folder) with a registered model, the "
        "champion of gate.model_name unless --model or scoring.model names another; rows are read, scored and "
        "written in chunks (scoring.chunk_rows), the output is one score column per task after the "
        "scoring.keep columns, and OUTPUT.json records the model version. Without them: the pipeline stage, "
        "scoring the raw test rows through the served-model path with the candidate and the single-task "
        "baseline into data/05_evaluation/test_predictions.parquet (and baseline_predictions.parquet).",
        deps=("data/03_features", "data/04_model/model.pt", "data/04_model/train.json", "data/04_model/baseline"),
        # baseline_predictions.parquet is empty (no columns) without the single_task baseline
        outs=(("data/05_evaluation/test_predictions.parquet", NOT_CACHED),
              ("data/05_evaluation/baseline_predictions.parquet", NOT_CACHED)),
    ),
    Stage(
        "evaluate_task", "mtl.stages.evaluate_task:run",
        summary="one task's metrics with intervals, slices and its gain over the baseline (the map step)",
        help="Evaluate one task (DVC stage evaluate_task@N, one mapped Airflow task each): metrics with bootstrap "
        "intervals, slices, calibration, ROC, and the paired gain over its single-task baseline; write "
        "data/05_evaluation/tasks/TASK/metrics.json.",
        # train.json and baseline: the thresholds (chosen on validation) its F1 etc. are at
        deps=("data/03_features/test_raw.parquet", "data/05_evaluation/test_predictions.parquet",
              "data/05_evaluation/baseline_predictions.parquet", "data/04_model/train.json",
              "data/04_model/baseline"),
        params=("tasks", "evaluation", "data.schema", "data.panel"),
        outs=(("data/05_evaluation/tasks/${item.name}", NOT_CACHED),),
        per_task=True,
        note="One stage per task (evaluate_task@0, @1, ... in the order of params.yaml tasks): the map step,\n"
             "run as one mapped task each by the Airflow DAG; `evaluate` below is the reduce.",
    ),
    Stage(
        "evaluate", "mtl.stages.evaluate:run",
        summary="every task gathered: metrics.json, Δm, ROC and reliability plots (the reduce step)",
        help="Gather every task's evaluation: metrics.json beside the oracle AUC, the MTL gain (delta_m, negative "
        "transfer), DVC metrics and plots under data/05_evaluation; log them to MLflow.",
        deps=("data/04_model/train.json", "data/05_evaluation/tasks"),
        params=("tasks",),
        outs=(("data/05_evaluation/metrics.json", NOT_CACHED),),
        # the headline figures, what `dvc exp show` and `dvc metrics diff` compare
        metrics=(("data/05_evaluation/summary.json", NOT_CACHED),),
        plots=(("data/05_evaluation/plots", {"cache": False, "x": "fpr", "y": "tpr"}),
               ("data/05_evaluation/calibration", {"cache": False, "x": "mean_prediction", "y": "positive_rate"})),
    ),
    Stage(
        "gate", "mtl.stages.gate:run",
        summary="the verdict against the current champion; a failed gate is an outcome, not an error",
        help="Judge the candidate against the current champion (alias 'champion') with the gate.tasks and "
        "gate.slices thresholds; write data/06_promotion/gate.json. A failed gate is an outcome, not an error.",
        deps=("data/04_model/train.json", "data/05_evaluation/metrics.json",
              "data/05_evaluation/test_predictions.parquet"),
        params=("gate", "evaluation"),
        outs=(("data/06_promotion/gate.json", NOT_CACHED),),
        # The champion lives in the registry, outside what DVC tracks: judge against the current
        # one on every run, so a rerun does not act on a verdict about an older champion.
        force="always",
    ),
    Stage(
        "promote", "mtl.stages.promote:run",
        summary="register the candidate; move champion only on a pass and a clean load in a fresh process",
        help="Register the candidate as a model version and move the 'champion' alias to it only when the gate "
        "passed and the packaged model loads in a fresh process. Writes data/06_promotion/decision.json.",
        deps=("data/03_features", "data/04_model/model.pt", "data/04_model/train.json",
              "data/05_evaluation/metrics.json", "data/05_evaluation/test_predictions.parquet",
              "data/06_promotion/gate.json"),
        params=("gate", "evaluation"),
        outs=(("data/06_promotion/decision.json", NOT_CACHED), ("data/06_promotion/model_card.md", NOT_CACHED),
              ("data/06_promotion/model_card.html", NOT_CACHED)),
    ),
)

BY_NAME = {s.name: s for s in STAGES}


def functions() -> dict:
    """Stage name -> its function, in pipeline order (an in-process run of the chain calls each
    with (cfg, paths); the per-task one then evaluates every task)."""
    return {s.name: s.load() for s in STAGES}
BY_COMMAND = {s.command: s for s in STAGES}


def tracked_params() -> tuple[str, ...]:
    """Every params.yaml key (dotted) some stage tracks in dvc.yaml: each must be in the file."""
    return tuple(dict.fromkeys(p for s in STAGES for p in s.params))


def missing_params(raw: dict) -> list[str]:
    """The tracked keys ``raw`` (params.yaml as written) lacks."""
    def has(key: str) -> bool:
        node = raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    return [key for key in tracked_params() if not has(key)]

DVC_HEADER = """\
# Generated by `mtl dvc-yaml` from mtl/stagelist.py: edit the stage list there, then rerun it
# (tests/code/test_stagelist.py fails while this file differs). `mtl run`, the Makefile and the
# Airflow DAGs run these stages (via `dvc repro`). Each stage's code deps are the mtl/ files its
# function can run, computed from its imports (mtl/codedeps.py).
"""


def _dvc_entry(out: Out):
    return out if isinstance(out, str) else {out[0]: dict(out[1])}


def dvc_stage(stage: Stage) -> dict:
    """One stage of dvc.yaml: its command, data deps then code deps, params, outputs."""
    from mtl.codedeps import code_deps

    body: dict = {"cmd": stage.dvc_cmd(), "deps": [*stage.deps, *code_deps(stage.function)]}
    for key in ("params", "outs", "metrics", "plots"):
        values = getattr(stage, key)
        if values:
            body[key] = list(values) if key == "params" else [_dvc_entry(v) for v in values]
    return {"foreach": "${tasks}", "do": body} if stage.per_task else body


def dvc_yaml() -> str:
    """The text of dvc.yaml."""
    import yaml

    parts = [DVC_HEADER, "stages:\n"]
    for stage in STAGES:
        if stage.note:
            parts.append("".join(f"  # {line}\n" for line in stage.note.splitlines()))
        text = yaml.safe_dump({stage.name: dvc_stage(stage)}, sort_keys=False, default_flow_style=False, width=110)
        parts.append("".join(f"  {line}\n" for line in text.splitlines()))
    return "".join(parts)


README_BEGIN = "<!-- stage table: generated from mtl/stagelist.py by `python -m mtl.stagelist` -->"
README_END = "<!-- end of stage table -->"
_WHEN = {"always": "every run (the champion lives outside DVC)", "source_changed": "also when your files change"}


def markdown_table() -> str:
    """The README's stage table, between its markers: what each stage does, reads and writes."""

    def paths(entries) -> str:
        return ", ".join(f"`{(e if isinstance(e, str) else e[0]).replace('${item.name}', 'TASK')}`"
                         for e in entries) or "-"

    rows = [README_BEGIN, "| stage | command | does | reads | writes | notes |", "|---|---|---|---|---|---|"]
    for s in STAGES:
        notes = [*(["one per task"] if s.per_task else []), *(["GPU pool"] if s.gpu else []),
                 *([_WHEN[s.force]] if s.force else []), *(["no retries"] if s.retries == 0 else [])]
        rows.append(f"| {s.name}{'@N' if s.per_task else ''} | `mtl {s.command}{' TASK' if s.per_task else ''}` | "
                    f"{s.summary} | {paths(s.deps)} | {paths((*s.outs, *s.metrics, *s.plots))} | "
                    f"{', '.join(notes) or '-'} |")
    return "\n".join([*rows, README_END])


if __name__ == "__main__":
    print(markdown_table())
