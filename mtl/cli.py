"""`mtl`: one subcommand per pipeline stage, plus `run` (the whole chain) and `report`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from mtl.stagelist import BY_COMMAND, STAGES

STAGE_HELP = {s.command: s.help for s in STAGES}  # subcommand -> description, in pipeline order


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mtl",
        description="Multi-task learning pipeline for e-commerce. Stages run in this order: "
        + " -> ".join(STAGE_HELP) + ". `mtl run` runs them all through DVC (only what changed).",
    )
    p.add_argument("--project", help="project directory (default: $MTL_PROJECT_DIR or the nearest folder with dvc.yaml)")
    p.add_argument("--params", help="params file (default: <project>/params.yaml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for declared in STAGES:
        name, text = declared.command, declared.help
        stage = sub.add_parser(name, help=declared.summary, description=text)
        if declared.per_task:
            stage.add_argument("task", help="the task's name (params.yaml tasks[].name)")
        if name == "score":
            stage.add_argument("--input", metavar="PATH", help="rows to score: a .parquet/.csv file or a folder of them")
            stage.add_argument("--output", metavar="PATH", help="where the scores go (.parquet or .csv)")
            stage.add_argument("--model", metavar="URI", help="models:/NAME/VERSION, models:/NAME@ALIAS or runs:/...; "
                               "default: scoring.model, else models:/<gate.model_name>@champion")
            stage.add_argument("--chunk-rows", type=int, metavar="N", help="rows per chunk (default scoring.chunk_rows)")
            stage.add_argument("--keep", metavar="COLS", help="comma-separated input columns copied beside the "
                               "scores (default scoring.keep; '' for none)")
    sub.add_parser("run", help="run the whole pipeline with `dvc repro`, then print the report",
                   description="Run every stage that is out of date (dvc repro), then print the per-task "
                   "table of test AUC beside the oracle AUC and the promotion decision.")
    sub.add_parser("report", help="print the per-task metrics table and the last promotion decision")
    init = sub.add_parser("init", help="write params for your own parquet/CSV file or folder (infers the schema)",
                          description="Read a sample of your file or folder, decide each column's role (label, "
                          "categorical, numeric, time, split, history, text) and print why, then write a complete "
                          "params file naming your columns in every section, so `mtl run` works without edits. An "
                          "existing file is kept as <file>.bak.")
    init.add_argument("--from", dest="source", required=True, metavar="PATH", help="a .parquet/.csv file or a folder")
    init.add_argument("--labels", metavar="COLS", help="comma-separated label columns (default: every 0/1 column)")
    init.add_argument("--output", metavar="FILE", help="where to write (default: <project>/params.yaml)")
    dvc_yaml = sub.add_parser("dvc-yaml", help="write dvc.yaml from the stage list (mtl/stagelist.py)",
                              description="Write the project's dvc.yaml from mtl/stagelist.py, each stage's code "
                              "deps computed from its imports; --check only says whether the file is up to date.")
    dvc_yaml.add_argument("--check", action="store_true", help="exit 1, changing nothing, when dvc.yaml differs")
    sub.add_parser("champion", help="show the current champion of gate.model_name",
                   description="The version holding the 'champion' alias, its run, metrics and lineage, and "
                   "the 'previous_champion' that `mtl rollback` would restore.")
    sub.add_parser("rollback", help="make the previous champion the champion again",
                   description="Move 'champion' back to the version under 'previous_champion' (under the "
                   "promotion lock); the demoted version is tagged rolled_back.")
    lineage = sub.add_parser("lineage", help="print the chain behind a model version",
                             description="Data and transform hashes, validation result, params, git commit, "
                             "pipeline run and MLflow run of a version, and the champions it replaced.")
    lineage.add_argument("version", help="the model version number (see `mtl champion`)")
    lineage.add_argument("--verify", action="store_true", help="also re-hash the version's data in the DVC cache and "
                         "check its transform's fingerprint (reads every file)")
    _gc_parser(sub)
    _tune_parser(sub)
    return p


def _gc_parser(sub) -> None:
    gc = sub.add_parser("gc", help="remove what the retention policy expires (params.yaml retention)",
                        description="Apply the retention policy to MLflow (expired runs, logged models and registry "
                        "versions), the DVC cache, quarantined batches, daily score files and Airflow's history of "
                        "the project's DAGs. The champion, the previous champion and the lineage of every version "
                        "that was ever champion are always kept. Waits for running pipelines (it takes their locks).")
    gc.add_argument("--dry-run", action="store_true", help="print what would go and the space it frees; delete nothing")
    gc.add_argument("--verbose", action="store_true", help="list every item, not only the totals per store")
    gc.add_argument("--as-of", metavar="YYYY-MM-DD", help="date the ages from this day instead of now (with --dry-run: "
                    "what gc will remove by then)")


TUNE_HELP = (
    "Search the hyperparameters of tune.space with Optuna (TPE sampler, median pruning on each epoch's "
    "validation score) on the preprocessed features of data/03_features (run `dvc repro preprocess` first). "
    "Trial 0 trains params.yaml as shipped; every trial is an MLflow child run under one parent run "
    "(experiment mtl-tuning). The study lives in optuna.db beside mlflow.db: after Ctrl-C, rerunning "
    "`mtl tune` resumes it and runs only the missing trials. At the end it prints the trials and whether "
    "the best beats the shipped settings on the validation metric; if so it writes them to tune_best.yaml, "
    "which `mtl tune --apply` copies into params.yaml. Tuning never registers a model or moves the champion."
)


def _tune_parser(sub) -> None:
    tune = sub.add_parser("tune", help="search hyperparameters with Optuna (never registers a model)",
                          description=TUNE_HELP)
    tune.add_argument("--trials", type=int, metavar="N",
                      help="finished trials the study should hold (default tune.trials); a rerun adds only the rest")
    tune.add_argument("--timeout", type=float, metavar="MIN",
                      help="start no trial after MIN minutes (default tune.timeout_minutes: no limit)")
    tune.add_argument("--rows", type=int, metavar="N",
                      help="train each trial on a seeded sample of N training rows (default tune.rows: all); "
                      "faster, but a smaller sample may favour other settings")
    tune.add_argument("--apply", action="store_true",
                      help="instead of searching, write tune_best.yaml's values into params.yaml (comments kept)")
    # also accepted after the subcommand; SUPPRESS keeps `mtl --params X tune` working
    tune.add_argument("--params", default=argparse.SUPPRESS, help="params file (default: <project>/params.yaml)")


def _tune(cfg, paths, args) -> str:
    from mtl import tuning
    from mtl.config import with_overrides

    if args.apply:
        params_file = Path(args.params) if args.params else paths.root / "params.yaml"
        changes = tuning.apply_best(params_file, paths.tune_best)
        if not changes:
            return f"{params_file} already holds the values of {paths.tune_best}"
        return f"wrote into {params_file}:\n  " + "\n  ".join(changes) + "\nrun `mtl run` to train with them"
    given = {"tune.trials": args.trials, "tune.timeout_minutes": args.timeout, "tune.rows": args.rows}
    return tuning.tune(with_overrides(cfg, {k: v for k, v in given.items() if v is not None}), paths).describe()


def _dvc_yaml(path: Path, check: bool) -> int:
    from mtl.stagelist import dvc_yaml

    text = dvc_yaml()
    current = path.read_text() if path.is_file() else None
    if check:
        print(f"{path} is up to date" if current == text else
              f"{path} differs from the stage list: run `mtl dvc-yaml` and commit it")
        return 0 if current == text else 1
    if current != text:
        path.write_text(text)
    print(f"{path} {'written' if current != text else 'already up to date'}")
    return 0


def _torchrun(cfg, root, args) -> list[str] | None:
    """The torchrun command for `mtl train` when train.distributed asks for several processes."""
    from mtl.training.distributed import launch_command

    cuda = 0
    if cfg.train.distributed.nproc_per_node == "auto" and cfg.train.device != "cpu":
        import torch  # only to count GPUs: the other stages never pay for it here

        cuda = torch.cuda.device_count()
    argv = ["--project", str(root), *(["--params", args.params] if args.params else []), "train"]
    run_id = os.environ.get("MTL_PIPELINE_RUN_ID") or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    return launch_command(cfg, argv, cuda, run_id)


def _run(args, cfg, root, paths) -> int:
    """`dvc repro` in the project, or, with --params naming another file, in that file's own
    workspace (.mtl/runs/params-NAME, mtl/workspaces.py): DVC reads params.yaml, and the
    project's is never rewritten. The workspace stays (its outputs are what the report shows);
    running again with the same file is incremental, like `mtl run`."""
    from mtl.pipeline import run_all
    from mtl.stages.report import report

    started = time.perf_counter()
    params_file = Path(args.params).resolve() if args.params else None
    if params_file is not None and params_file != (root / "params.yaml").resolve():
        from mtl import workspaces
        from mtl.config import read_raw
        from mtl.paths import Paths

        root = workspaces.create(root, f"params-{params_file.stem}", read_raw(params_file),
                                 {"params_file": str(params_file)}, refresh=True)
        paths = Paths.at(root)
        print(f"running with {params_file} in its workspace {root} (the project's params.yaml is not used)")
    _check_tracked(root / "params.yaml")
    since = time.time()
    run_all(root)
    print("\n" + report(paths))
    print("\n" + _stage_times(root, since, time.perf_counter() - started))
    return 0


def _stage_times(root: Path, since: float, total: float) -> str:
    """The wall time of each stage this run ran (the rest were up to date)."""
    from mtl.runstate import stage_times_since

    ran = stage_times_since(root, since)
    if not ran:
        return f"pipeline finished in {total:.0f} s: every stage was up to date"
    width = max(len(name) for name in ran)
    lines = [f"pipeline finished in {total:.0f} s; the stages that ran:"]
    lines += [f"  {name:<{width}}  {seconds:>7.1f} s" for name, seconds in ran.items()]
    return "\n".join(lines)


def _init(args, root) -> int:
    from mtl.scaffold import describe, init

    output = Path(args.output) if args.output else root / "params.yaml"
    labels = [c.strip() for c in args.labels.split(",") if c.strip()] if args.labels else None
    backup, columns, params = init(Path(args.source), root, output, labels)
    print(describe(columns, params, output, backup))
    return 0


def _check_tracked(params_file: Path) -> None:
    """DVC stops on a tracked key the file lacks, with a bare message: name them and the fix."""
    from mtl.config import ConfigError, read_raw
    from mtl.stagelist import missing_params

    missing = missing_params(read_raw(params_file))
    if missing:
        raise ConfigError(f"{params_file} lacks {', '.join(missing)}, which dvc.yaml tracks (DVC would stop on it). "
                          f"Add the section(s) (their defaults are in the project's params.yaml), or write a "
                          f"complete file for your data with `mtl init --from PATH`.")


def _report(args, cfg, root, paths) -> int:
    from mtl.stages.report import report

    print(report(paths))
    return 0


def _registry(args, cfg, root, paths) -> int:
    from mtl import registry_cli

    if args.command == "lineage":
        print(registry_cli.lineage(cfg, paths, args.version, rehash=args.verify))
    else:
        print(getattr(registry_cli, args.command)(cfg, paths))
    return 0


def _score(args, cfg, root, paths) -> int:
    """With --input/--output: batch scoring with a registered model; else the pipeline stage."""
    from mtl.serving.batch import ScoringError, score

    if not (args.input or args.output):
        return _stage(args, cfg, root, paths)
    if not (args.input and args.output):
        raise ScoringError("batch scoring needs both --input and --output")
    keep = None if args.keep is None else [c.strip() for c in args.keep.split(",") if c.strip()]
    print(score(cfg, paths, args.input, args.output, model=args.model, chunk_rows=args.chunk_rows,
                keep=keep).describe())
    return 0


def _train(args, cfg, root, paths) -> int:
    """The stage, or torchrun launching it on every process train.distributed asks for."""
    from mtl.pipeline import StageFailed

    launch = _torchrun(cfg, root, args)
    if not launch:
        return _stage(args, cfg, root, paths)
    print("training with torchrun: " + " ".join(launch[1:]), flush=True)
    rc = subprocess.run(launch).returncode
    if rc != 0:
        raise StageFailed(f"torchrun exited with {rc}; each rank's error is above")
    return 0


def _stage(args, cfg, root, paths) -> int:
    from mtl.runstate import record_stage_time

    stage = BY_COMMAND[args.command]
    started = time.perf_counter()
    stage.load()(cfg, paths, *([args.task] if stage.per_task else []))
    record_stage_time(root, " ".join([stage.name, *([args.task] if stage.per_task else [])]),
                      time.perf_counter() - started, time.time())
    return 0


def _write_dvc_yaml(args, cfg, root, paths) -> int:
    return _dvc_yaml(root / "dvc.yaml", args.check)


def _gc(args, cfg, root, paths) -> int:
    import datetime as dt

    from mtl.config import ConfigError
    from mtl.maintenance.gc import gc

    now = None
    if args.as_of:
        try:
            now = dt.datetime.strptime(args.as_of, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            raise ConfigError(f"--as-of {args.as_of!r} is not a day: use YYYY-MM-DD") from None
    gc(cfg, paths, dry_run=args.dry_run, now=now, verbose=args.verbose)
    return 0


def _search(args, cfg, root, paths) -> int:
    print(_tune(cfg, paths, args))
    return 0


# The commands that write the params file, so they cannot need a valid one.
SETUP_COMMANDS = {"init": _init}
# The commands that are not a plain stage call; every other subcommand runs its stage.
COMMANDS = {"run": _run, "report": _report, "dvc-yaml": _write_dvc_yaml, "champion": _registry,
            "rollback": _registry, "lineage": _registry, "score": _score, "train": _train, "tune": _search,
            "gc": _gc}


def _errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(what the user must fix: exit 2, a failed stage or contract: exit 1), imported on use."""
    from mtl.config import ConfigError
    from mtl.data.contracts.suite import ExpectationsFileError
    from mtl.data.features.framing import FramingError
    from mtl.data.features.splits import SplitError
    from mtl.data.ingest.infer import InferenceError
    from mtl.data.ingest.sources import SourceError
    from mtl.pipeline import StageFailed
    from mtl.promotion.registry import RegistryError
    from mtl.scoring import SchemaMismatch
    from mtl.serving.batch import ScoringError
    from mtl.stages.common import ValidationFailed
    from mtl.tuning import TuneError

    return ((ConfigError, SourceError, SplitError, FramingError, ExpectationsFileError, FileNotFoundError,
             RegistryError, ScoringError, SchemaMismatch, TuneError, InferenceError), (StageFailed, ValidationFailed))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from mtl.progress import interactive

    if not interactive():  # a log (Airflow, CI, a pipe): MLflow's download bars would be one garbled line
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mtl.config import load_config
    from mtl.paths import Paths
    from mtl.pipeline import project_root
    from mtl.tuning import TuneInterrupted

    usage, failed = _errors()
    try:
        root = project_root(args.project)
        if args.command in SETUP_COMMANDS:
            return SETUP_COMMANDS[args.command](args, root)
        paths = Paths.at(root)
        cfg = load_config(args.params or root / "params.yaml")  # fail fast on a bad config
        return COMMANDS.get(args.command, _stage)(args, cfg, root, paths)
    except usage as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TuneInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    except failed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        uri = _tracking_outage(err)
        if uri is None:
            raise
        after = {"train": "training resumes from its last checkpoint (the champion is untouched: nothing is "
                 "registered before `mtl promote`)",
                 "promote": "a rerun registers the candidate at most once and moves the champion only on a pass"}
        print(f"error: the MLflow tracking server at {uri} did not answer ({_first_line(err)}). Start it, or point "
              f"MLFLOW_TRACKING_URI at the right one, and rerun `mtl {args.command}`: "
              f"{after.get(args.command, 'the stage runs again from its inputs')}.", file=sys.stderr)
        return 1


def _tracking_outage(err: BaseException) -> str | None:
    """The tracking URI when ``err`` (or what it was raised during) says the server did not
    answer, else None: an outage is an operational fault with a fix, not a bug to trace."""
    import requests
    from mlflow.exceptions import MlflowException

    for e in (err, err.__context__, err.__cause__):
        if isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            break
        if isinstance(e, MlflowException) and "API request to" in str(e) and any(
                s in str(e) for s in ("ConnectionError", "Connection refused", "Max retries", "timed out")):
            break
    else:
        return None
    return os.environ.get("MLFLOW_TRACKING_URI") or "(the local store)"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


if __name__ == "__main__":
    sys.exit(main())
