"""Benchmark: batch scoring of a 1M-row log with the registered champion (`mtl score`).

    python scripts/bench_scoring.py [--rows 1000000] [--data .bench-data]   (or: make bench-scoring)

Builds, once (cached under --data), a project whose registry holds a champion of the default
configuration (the pipeline's own stages: the default synthetic log, one epoch, no baselines),
then runs `mtl score` in a fresh process on the log as parquet and as CSV, streamed in chunks of
scoring.chunk_rows. Prints rows/s of the scoring itself (read, transform, model, write; from the
output's manifest) and the wall time of the whole command (interpreter start, MLflow model load).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

import benchparams  # scripts/, beside this file

ROOT = benchparams.ROOT
sys.path.insert(0, str(ROOT))

# One epoch and no baselines: the model's size (not its quality) sets the scoring speed.
BUILD = {"train.epochs": 1, "train.progress": False, "evaluation.baselines": False, "evaluation.bootstrap": 30,
         "gate.tasks.click.floor": 0.5, "gate.tasks.add_to_cart.floor": 0.5, "gate.tasks.purchase.floor": 0.5}


def build(params: Path, project: Path, rows: int) -> Path:
    """A project with a champion; the raw log it was trained on is the scoring input."""
    from mtl.config import apply_overrides
    from mtl.handoffs import Decision
    from mtl.paths import Paths

    if (project / "mlflow.db").is_file() and Paths.at(project).decision_file.is_file():
        return project
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    shutil.copy(params, project / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copytree(ROOT / "configs", project / "configs")
    raw = apply_overrides(yaml.safe_load((project / "params.yaml").read_text()), {**BUILD, "data.synthetic.rows": rows})
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "import sys; from mtl.config import load_config; "
                           "from mtl.paths import Paths; from mtl.stagelist import functions; "
                           "root = sys.argv[1]; cfg = load_config(root + '/params.yaml'); paths = Paths.at(root)\n"
                           "for stage in functions().values(): stage(cfg, paths)", str(project)],
                          capture_output=True, text=True, env=_env(project))
    if proc.returncode != 0:
        sys.exit(f"building the champion failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    decision = Decision.read(Paths.at(project).decision_file)
    if not decision.promote:
        sys.exit(f"no champion: {decision.summary}")
    print(f"champion built in {time.perf_counter() - started:.0f} s ({project})")
    return project


def _env(project: Path) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return env | {"MTL_PROJECT_DIR": str(project), "PYTHONPATH": str(ROOT)}


def inputs(project: Path, data: Path) -> dict[str, Path]:
    import pandas as pd

    (raw,) = (project / "data" / "01_raw").glob("*.parquet")
    files = {"parquet": data / "scoring_input.parquet", "csv": data / "scoring_input.csv"}
    if not files["parquet"].is_file():
        shutil.copy(raw, files["parquet"])
    if not files["csv"].is_file():
        pd.read_parquet(raw).to_csv(files["csv"], index=False)
    return files


def run(project: Path, source: Path, output: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mtl.cli", "--project", str(project), "score",
                           "--input", str(source), "--output", str(output)],
                          capture_output=True, text=True, env=_env(project))
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"mtl score failed:\n{proc.stderr[-3000:]}")
    manifest = json.loads(output.with_name(output.name + ".json").read_text())
    return manifest | {"wall_seconds": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--data", type=Path, default=ROOT / ".bench-data")
    benchparams.add_argument(p)
    args = p.parse_args()
    # checked before any work: a params file that cannot generate the log, or whose tasks lack
    # the default gate's, stops here with the reason
    benchparams.load(args.params, {**BUILD, "data.synthetic.rows": args.rows})
    key = hashlib.md5(args.params.read_bytes()).hexdigest()[:8]  # another --params builds its own champion
    data = args.data.resolve() / f"scoring_{args.rows}_{key}"
    data.mkdir(parents=True, exist_ok=True)
    project = build(args.params, data / "project", args.rows)
    files = inputs(project, data)
    import torch

    print(f"machine: {torch.get_num_threads()} torch threads; chunks of "
          f"{yaml.safe_load((project / 'params.yaml').read_text())['scoring']['chunk_rows']:,} rows")
    for fmt, source in files.items():
        result = run(project, source, data / f"scores.{fmt}")
        print(f"{fmt:>8} -> {fmt:<8} {result['rows']:,} rows: {result['rows_per_second']:,.0f} rows/s scoring "
              f"({result['seconds']:.1f} s), {result['wall_seconds']:.1f} s for the whole `mtl score` "
              f"(start-up and model load included), model {result['model_uri']}")


if __name__ == "__main__":
    main()
