"""The I/O half of `mtl tune`: the features loaded once, the Optuna study in optuna.db (a rerun
resumes it), an MLflow parent run with a child run per trial, the best settings written to
tune_best.yaml. Never logs or registers a model."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtl.config import Config, ConfigError, SearchDimension, TaskConfig, TuneConfig, with_overrides
from mtl.paths import Paths
from mtl.tuning.space import (METRIC, PARENT_RUN, SHIPPED, VALUES, TrialRow, TuneResult, current_values, overlay_text,
                              shipped_params, study_name, suggest, verdict)

if TYPE_CHECKING:  # annotations only: importing this module loads neither numpy nor torch
    import numpy as np

    from mtl.data.features import Arrays
    from mtl.data.features.shards import Shards
    from mtl.models.layers import InputSpec

class TuneError(RuntimeError):
    """The search cannot run as asked; the message says what to do."""


class TuneInterrupted(RuntimeError):
    """Ctrl-C stopped the search; the finished trials are kept and a rerun resumes."""


def _training_rows(shards: Shards, rows: int | None, seed: int) -> Shards | Arrays:
    """All training shards, or a seeded sample of ``rows`` of them held in memory."""
    import numpy as np

    from mtl.data.features import Arrays

    if rows is None or rows >= len(shards):
        return shards
    pick = np.sort(np.random.default_rng(seed).choice(len(shards), rows, replace=False))
    parts, start = [], 0
    for i, (_, n) in enumerate(shards.parts):
        local = pick[(pick >= start) & (pick < start + n)] - start
        if len(local):
            parts.append(shards.load(i).take(local))
        start += n
    return Arrays.concat(parts)


@dataclass(frozen=True)
class _Data:
    """What every trial trains and validates on, loaded once."""

    train: Shards | Arrays
    val: Arrays
    spec: InputSpec
    tasks: tuple[TaskConfig, ...]
    text_table: np.ndarray | None
    fingerprint: str  # the fitted transform's


def _load_data(cfg: Config, paths: Paths) -> _Data:
    from mtl.data import features
    from mtl.data.features.shards import open_split
    from mtl.models.layers import InputSpec

    if not paths.transform_file.is_file():
        raise FileNotFoundError(f"{paths.transform_file} is missing: `mtl tune` trains on the preprocessed "
                                "features; run `dvc repro preprocess` (or `mtl run`) first")
    transform = features.Transform.load(paths.transform_file)
    return _Data(_training_rows(open_split(paths.split_dir("train")), cfg.tune.rows, cfg.tune.seed),
                 open_split(paths.split_dir("validation")).all(),
                 InputSpec.from_transform(transform, cfg.data.schema.scenario), transform.tasks,
                 transform.text_table(), transform.fingerprint())


@contextmanager
def _only_search(lock: Path) -> Iterator[None]:
    """One search per project at a time: a trial still RUNNING in the study is then a dead one's."""
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TuneError(f"another `mtl tune` is running on this project (it holds {lock}); "
                            "wait for it to finish or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open_study(tc: TuneConfig, paths: Paths, name: str):
    import optuna

    # Each trial's outcome is printed by `_progress`; Optuna's own log would repeat it (with a
    # traceback for a skipped combination).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Steps are epochs, from 1; Optuna may prune at a step >= n_warmup_steps.
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=tc.pruning.startup_trials,
                                          n_warmup_steps=tc.pruning.warmup_epochs + 1)
              if tc.pruning.enabled else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{paths.optuna_db}", direction="maximize",
                                load_if_exists=True, pruner=pruner)
    # Seeded by the trials so far: a resumed search would otherwise draw its random start trials
    # again, repeating settings the study has already tried.
    study.sampler = optuna.samplers.TPESampler(seed=tc.seed + len(study.trials),
                                               n_startup_trials=tc.startup_trials)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # its process was killed
    return study


def _finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _enqueue_shipped(study, cfg: Config, echo: Callable[[str], None]) -> dict[str, Any]:
    """Queue the trial of the shipped settings unless it finished or waits already (a killed
    one failed, and is queued again); returns its Optuna params."""
    from optuna.trial import TrialState

    current = current_values(cfg, list(cfg.tune.space))
    params = shipped_params(cfg.tune.space, current)
    for key in cfg.tune.space.keys() - params.keys():
        echo(f"note: the shipped {key} ({current[key]!r}) is outside tune.space; trial 0 trains it anyway")
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)
    if not any(t.user_attrs.get(SHIPPED) for t in study.get_trials(deepcopy=False, states=live)):
        study.enqueue_trial(params, user_attrs={SHIPPED: True})
    return params


@contextmanager
def _mlflow_run(**kwargs) -> Iterator[Any]:
    """An MLflow run that ends FINISHED (a pruned trial too), KILLED on Ctrl-C, else FAILED."""
    import mlflow
    import optuna

    run = mlflow.start_run(**kwargs)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except optuna.TrialPruned:
        status = "FINISHED"
        raise
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        mlflow.end_run(status)


def _parent_run(study, experiment_id: str) -> str | None:
    """The MLflow run of an earlier search of this study, if this tracking store has it; its
    children a killed search left running are marked killed."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run_id = study.user_attrs.get(PARENT_RUN)
    if not run_id:
        return None
    client = MlflowClient()
    try:
        if client.get_run(run_id).info.lifecycle_stage != "active":  # deleted in the UI
            return None
    except MlflowException:  # another tracking store
        return None
    for child in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run_id}' "
                                                     "and attributes.status = 'RUNNING'"):
        client.set_terminated(child.info.run_id, "KILLED")
    return run_id


def _trial_values(trial, space: dict[str, SearchDimension], shipped: dict[str, Any],
                  current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the values a trial trains with, its overrides of the config). The shipped trial overrides
    nothing; it still draws the values the space holds, which returns them and tells the sampler."""
    if trial.user_attrs.get(SHIPPED):
        suggest(trial, {k: space[k] for k in shipped}, current)
        return current, {}
    values = suggest(trial, space, current)
    return values, values


def _objective(cfg: Config, data: _Data, shipped: dict[str, Any],
               echo: Callable[[str], None]) -> Callable[[Any], float]:
    import mlflow
    import optuna

    from mtl.training import loop

    current = current_values(cfg, list(cfg.tune.space))
    epochs = cfg.tune.epochs or cfg.train.epochs
    fixed = {"train.epochs": epochs, "train.progress": False}

    def objective(trial: optuna.Trial) -> float:
        values, overrides = _trial_values(trial, cfg.tune.space, shipped, current)
        trial.set_user_attr(VALUES, values)
        try:
            trial_cfg = with_overrides(cfg, overrides | fixed)
        except ConfigError as err:  # values that are each valid but not together
            echo(f"trial {trial.number}: not a valid combination, skipped: {err}")
            raise
        tags = {"mtl.kind": "tune-trial", "mtl.trial": str(trial.number),
                "mtl.shipped": str(bool(trial.user_attrs.get(SHIPPED))).lower()}
        # a nested run lands in the default experiment unless told the parent's
        experiment_id = mlflow.active_run().info.experiment_id
        with _mlflow_run(experiment_id=experiment_id, nested=True, run_name=f"trial {trial.number}", tags=tags):
            mlflow.log_params({k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()})

            def on_epoch(rec: dict) -> None:
                mlflow.log_metrics({k: v for k, v in rec.items() if k != "epoch" and v is not None}, step=rec["epoch"])
                echo(f"trial {trial.number}, epoch {rec['epoch']}/{epochs}: {METRIC} {rec[METRIC]:.4f}")
                trial.report(rec[METRIC], rec["epoch"])
                if not trial.user_attrs.get(SHIPPED) and trial.should_prune():  # the yardstick runs in full
                    mlflow.set_tag("mtl.trial_state", "pruned")
                    raise optuna.TrialPruned(f"below the median of earlier trials at epoch {rec['epoch']}")

            result = loop.train(data.train, data.val, data.spec, data.tasks, trial_cfg, on_epoch=on_epoch,
                                text_table=data.text_table)
            mlflow.set_tag("mtl.trial_state", "complete")
            mlflow.log_metrics({f"best_{METRIC}": result.best_score, "best_epoch": result.best_epoch,
                                "train_seconds": result.seconds})
        return result.best_score

    return objective


def _row(t) -> TrialRow:
    seconds = t.duration.total_seconds() if t.duration is not None else None
    return TrialRow(t.number, t.state.name.lower(), t.value, seconds, t.user_attrs.get(VALUES, {}),
                    bool(t.user_attrs.get(SHIPPED)))


def _progress(echo: Callable[[str], None], total: int):
    def report(study, trial) -> None:
        row = _row(trial)
        score = "" if row.value is None else f": {METRIC} {row.value:.4f}"
        try:
            best = f"; best so far {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:  # nothing complete yet
            best = ""
        echo(f"trial {row.number} {row.state}{score} in {row.seconds or 0:.0f} s "
             f"({len(_finished(study))}/{total} finished{best})")

    return report


def _say(line: str) -> None:
    print(line, flush=True)  # a search runs for minutes: its log must follow it, also into a file


def tune(cfg: Config, paths: Paths, echo: Callable[[str], None] = _say) -> TuneResult:
    """Run the search until the study holds tune.trials finished trials (or tune.timeout_minutes
    passes), then write the best settings to tune_best.yaml when they beat the shipped ones."""
    from mtl import tracking

    tc = cfg.tune
    if not tc.space:
        raise ConfigError("tune.space is empty: name the model.* and train.* keys to search "
                          "(params.yaml in the repository has an example)")
    data = _load_data(cfg, paths)
    name = study_name(cfg, data.fingerprint)
    with _only_search(paths.optuna_db.with_name(paths.optuna_db.name + ".lock")):
        study = _open_study(cfg.tune, paths, name)
        done = len(_finished(study))
        shipped = _enqueue_shipped(study, cfg, echo)
        experiment_id = tracking.configure(paths, tracking.TUNE_EXPERIMENT)
        parent = _parent_run(study, experiment_id)
        echo(f"study {name} in {paths.optuna_db}: " + (f"resuming, {done} of {tc.trials} trials finished"
                                                       if done else f"new, {tc.trials} trials"))
        start = {"run_id": parent} if parent else {"experiment_id": experiment_id, "run_name": f"tune {name}"}
        try:
            with _mlflow_run(**start) as run:
                if parent is None:
                    study.set_user_attr(PARENT_RUN, run.info.run_id)
                    _log_search(cfg, paths, name)
                if tc.trials > done:
                    study.optimize(_objective(cfg, data, shipped, echo), n_trials=tc.trials - done,
                                   timeout=tc.timeout_minutes * 60 if tc.timeout_minutes else None,
                                   catch=(ConfigError,), callbacks=[_progress(echo, tc.trials)])
                result = _conclude(study, name, list(tc.space), paths)
                _log_outcome(result)
        except KeyboardInterrupt:  # the runs ended KILLED, the trial FAIL: a rerun resumes
            raise TuneInterrupted(f"interrupted: study {name} keeps its {len(_finished(study))} finished trial(s) "
                                  f"in {paths.optuna_db}; rerun `mtl tune` to resume (it runs only the rest)") from None
    return result


def _log_search(cfg: Config, paths: Paths, name: str) -> None:
    """What the parent run records once: lineage, and the search's settings."""
    import mlflow

    from mtl import tracking

    tc = cfg.tune
    mlflow.set_tags(tracking.lineage_tags(paths) | {"mtl.kind": "tune", "mtl.tune_study": name})
    space = {k: d.model_dump(exclude_none=True, exclude_defaults=True) for k, d in tc.space.items()}
    mlflow.log_params({"study": name, "metric": METRIC, "epochs": tc.epochs or cfg.train.epochs,
                       "rows": tc.rows or "all", "seed": tc.seed, "space": json.dumps(space)[:6000]})


def _log_outcome(result: TuneResult) -> None:
    """What the parent run records at the end of each search: the verdict and the overlay."""
    import mlflow

    complete = _complete(result.rows)
    mlflow.log_metrics({"trials_finished": result.finished,
                        **({f"best_{METRIC}": max(r.value for r in complete)} if complete else {})})
    mlflow.set_tags({"mtl.tune_verdict": result.message[:5000], "mtl.tune_improved": str(result.improved)})
    if result.overlay is not None:
        mlflow.log_text(result.overlay.read_text(), "tune_best.yaml")


def _complete(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.state == "complete"]


def _conclude(study, name: str, keys: list[str], paths: Paths) -> TuneResult:
    """The verdict, and tune_best.yaml written when the best beats the shipped settings (else
    removed: applying an earlier search's result against these data would mislead)."""
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    complete = _complete(rows)
    best = max(complete, key=lambda r: r.value) if complete else None
    shipped = next((r for r in rows if r.shipped and r.state != "fail"), None)
    improved, message = verdict(best, shipped)
    if improved:
        tmp = paths.tune_best.with_suffix(".yaml.tmp")
        tmp.write_text(overlay_text(best, shipped, name))
        tmp.replace(paths.tune_best)
    elif paths.tune_best.is_file():
        paths.tune_best.unlink()
        message += f"; removed the earlier {paths.tune_best.name}"
    return TuneResult(name, rows, keys, improved, message, paths.tune_best if improved else None)


