"""`mtl tune`: hyperparameter search with Optuna over the preprocessed features.

The first trial trains params.yaml as shipped, so the best one is judged against it in the same
study, on the same data and seed. The pure part (what a trial trains, the study's name, the
verdict, the overlay, the table) is plain functions; :func:`tune` is the I/O shell around them:
the study in optuna.db (a rerun resumes it), an MLflow parent run with a child per trial, and
the best settings written to tune_best.yaml, which :func:`apply_best` copies into params.yaml.

A search only trains and logs params and metrics: it never logs or registers a model, so the
registry and its aliases (the champion) are never touched.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mtl.config import Config, ConfigError, SearchDimension, apply_overrides, load_config, with_overrides
from mtl.orchestration import BASE_PARAMS, STATE_DIR
from mtl.paths import Paths

if TYPE_CHECKING:  # annotations only: importing this module loads neither numpy nor torch
    import numpy as np

    from mtl.data.features import Arrays
    from mtl.data.shards import Shards
    from mtl.models.layers import InputSpec

SHIPPED = "mtl.shipped"  # user attribute of the trial that trains params.yaml as it is
VALUES = "mtl.values"  # user attribute: the dotted key -> value a trial trained with
PARENT_RUN = "mlflow_run_id"  # study attribute: the MLflow run its trials are children of
METRIC = "val_selection_score"  # the early-stopping metric (mean validation AUC of the gated tasks): maximised


class TuneError(RuntimeError):
    """The search cannot run as asked; the message says what to do."""


class TuneInterrupted(RuntimeError):
    """Ctrl-C stopped the search; the finished trials are kept and a rerun resumes."""


# --- pure: what a trial trains --------------------------------------------------------------

def current_values(cfg: Config, keys: list[str]) -> dict[str, Any]:
    """The value of each dotted key in ``cfg`` (lists for tuples, as params.yaml writes them)."""
    raw = cfg.model_dump(mode="json", by_alias=True)
    out = {}
    for key in keys:
        node: Any = raw
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def _label(choice: Any) -> Any:
    """Optuna's name for a choice: lists become their JSON text (its choices must be scalars)."""
    return json.dumps(choice) if isinstance(choice, list) else choice


def _integer(dim: SearchDimension, current: Any) -> bool:
    """A range over a key that holds an integer draws integers (an unset key: if both ends are)."""
    if current is not None:
        return isinstance(current, int) and not isinstance(current, bool)
    return isinstance(dim.low, int) and isinstance(dim.high, int)


def _round(value: float) -> float:
    # Three significant digits: what a person would write in params.yaml, and what the trial
    # trains with, so the overlay reproduces the trial exactly.
    return float(f"{value:.3g}")


def suggest(trial, space: dict[str, SearchDimension], current: dict[str, Any]) -> dict[str, Any]:
    """The value of each key of ``space`` for this Optuna trial, as the config takes it."""
    values = {}
    for key, dim in space.items():
        if dim.choices is not None:
            labels = [_label(c) for c in dim.choices]
            values[key] = dim.choices[labels.index(trial.suggest_categorical(key, labels))]
        elif _integer(dim, current.get(key)):
            values[key] = trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
        else:
            values[key] = _round(trial.suggest_float(key, float(dim.low), float(dim.high), log=dim.log))
    return values


def shipped_params(space: dict[str, SearchDimension], current: dict[str, Any]) -> dict[str, Any]:
    """Optuna's params for the trial of the shipped settings: each key's current value where the
    space holds it. A value outside the space is left out; that trial trains it all the same."""
    params = {}
    for key, dim in space.items():
        value = current[key]
        if dim.choices is not None:
            if value in dim.choices:
                params[key] = _label(value)
        elif value is not None and dim.low <= value <= dim.high:
            params[key] = value
    return params


def study_name(cfg: Config, features_fingerprint: str) -> str:
    """tune.study, else the model's name and a hash of what makes trial scores comparable: the
    features, the model, training and task settings, and the search itself (not how many trials
    or for how long, so that a rerun asking for more resumes the same study)."""
    if cfg.tune.study:
        return cfg.tune.study
    payload = {"features": features_fingerprint, "tasks": [t.model_dump(mode="json") for t in cfg.tasks],
               "model": cfg.model.model_dump(mode="json"),
               "train": cfg.train.model_dump(mode="json", exclude={"progress", "num_threads"}),
               "tune": cfg.tune.model_dump(mode="json", exclude={"trials", "timeout_minutes", "study"})}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{cfg.gate.model_name}-{digest[:12]}"


# --- pure: the outcome ----------------------------------------------------------------------

@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # complete | pruned | fail | running | waiting
    value: float | None
    seconds: float | None
    values: dict[str, Any] = field(default_factory=dict)
    shipped: bool = False


def verdict(best: TrialRow | None, shipped: TrialRow | None) -> tuple[bool, str]:
    """Whether the best finished trial beats the shipped settings on the validation metric, and
    the sentence that says so (or why it cannot be said)."""
    if best is None:
        return False, "no trial finished, so there is no best setting to write"
    if shipped is None or shipped.state != "complete":
        return False, ("could not compare with the shipped defaults: their trial has not completed "
                       "(rerun `mtl tune` to resume)")
    if best.number == shipped.number or best.value <= shipped.value:
        return False, (f"could not beat the shipped defaults: their trial {shipped.number} scores {METRIC} "
                       f"{shipped.value:.4f} and no other trial scored higher; params.yaml stays as it is")
    return True, (f"trial {best.number} beats the shipped defaults: {METRIC} {best.value:.4f} against "
                  f"{shipped.value:.4f} (+{best.value - shipped.value:.4f}) on the validation split")


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted key: the inverse of ``apply_overrides({}, dotted)`` (mtl.config)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.update(flat(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


class _OverlayDumper(yaml.SafeDumper):
    """Block mappings, flow lists: the layout of params.yaml."""


_OverlayDumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def overlay_text(best: TrialRow, shipped: TrialRow, study: str) -> str:
    """tune_best.yaml: the best trial's settings in params.yaml's shape, with where they came from."""
    header = (f"# `mtl tune`, study {study}: trial {best.number} scored {METRIC} {best.value:.4f} on the\n"
              f"# validation split, the shipped settings (trial {shipped.number}) {shipped.value:.4f}.\n"
              "# `mtl tune --apply` writes these values into params.yaml (its comments kept); then `mtl run`.\n")
    return header + yaml.dump(apply_overrides({}, best.values), Dumper=_OverlayDumper, sort_keys=False,
                              default_flow_style=False)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(map(_cell, value)) + "]"
    return str(value)


def table(rows: list[TrialRow], keys: list[str]) -> str:
    """One line per trial: number, state, score, seconds and each searched value."""
    short = [k.split(".")[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    head = ["trial", "state", "score", "seconds", *names]
    body = [[f"{r.number}{'*' if r.shipped else ''}", r.state, "" if r.value is None else f"{r.value:.4f}",
             "" if r.seconds is None else f"{r.seconds:.0f}", *(_cell(r.values.get(k, "")) for k in keys)]
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]]
    return "\n".join(lines) + "\n(* the shipped settings of params.yaml)"


@dataclass(frozen=True)
class TuneResult:
    study: str
    rows: list[TrialRow]
    keys: list[str]
    improved: bool
    message: str
    overlay: Path | None

    @property
    def finished(self) -> int:
        return sum(r.state in ("complete", "pruned") for r in self.rows)

    def describe(self) -> str:
        lines = [f"study {self.study}: {self.finished} finished trial(s)", "", table(self.rows, self.keys), "",
                 self.message]
        if self.overlay is not None:
            lines.append(f"best settings written to {self.overlay}; apply them with `mtl tune --apply` "
                         "(writes them into params.yaml), then `mtl run`")
        return "\n".join(lines)


# --- I/O: data, study, MLflow ---------------------------------------------------------------

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
    tasks: list[dict]
    text_table: np.ndarray | None
    fingerprint: str  # the fitted transform's


def _load_data(cfg: Config, paths: Paths) -> _Data:
    from mtl.data import features
    from mtl.data.shards import open_split
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


def _open_study(cfg: Config, paths: Paths, name: str):
    import optuna

    # Each trial's outcome is printed by `_progress`; Optuna's own log would repeat it (with a
    # traceback for a skipped combination).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tc = cfg.tune
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
        study = _open_study(cfg, paths, name)
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


# --- applying the best settings -------------------------------------------------------------

def apply_best(params_file: Path, overlay_file: Path) -> list[str]:
    """Write the overlay's values into ``params_file``, keeping its comments and layout; returns
    one line per changed key. The result is validated before anything is written."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.util import load_yaml_guess_indent

    if not overlay_file.is_file():
        raise TuneError(f"{overlay_file} is missing: run `mtl tune` first (it writes the file when a trial "
                        "beats the shipped settings)")
    if (params_file.parent / STATE_DIR / BASE_PARAMS).is_file():
        raise TuneError(f"an Airflow run is applying its form values to {params_file} (see {STATE_DIR}/); "
                        "apply the tuned settings once it has finished")
    dotted = flat(yaml.safe_load(overlay_file.read_text()) or {})
    load_config(params_file, dotted)  # a stale or edited overlay fails here, naming the key
    text = params_file.read_text()
    _, indent, offset = load_yaml_guess_indent(text)
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap the file's long lines
    rt.indent(mapping=2, sequence=max(indent, offset + 2), offset=offset)  # block lists as the file has them
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    # PyYAML (what load_config reads with) takes 1e-05 for a string: write 1.0e-05
    rt.representer.add_representer(float, lambda r, v: r.represent_scalar("tag:yaml.org,2002:float",
                                                                           yaml.safe_dump(v).split("\n")[0]))
    doc = rt.load(text)
    changes = []
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, CommentedMap())
        old = node.get(last)
        if isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()  # [128, 64], as params.yaml writes lists
            value = seq
        if old != value:
            changes.append(f"{key}: {'(not set)' if last not in node else _cell(old)} -> {_cell(value)}")
        node[last] = value
    tmp = params_file.with_suffix(".yaml.tmp")
    with open(tmp, "w") as fh:
        rt.dump(doc, fh)
    tmp.replace(params_file)
    return changes
