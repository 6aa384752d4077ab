"""The boosted-tree baseline's features, side by side on one framed panel: the lag window
summarised (what the `baseline` stage fits, mtl/evaluation/gbdt.py) against the raw daily lags.
Prints, per task, each variant's test figure (WAPE for a mean forecast, pinball for a quantile,
AUC for an event; the quantiles calibrated on validation as the stage does), and the seconds
each variant's fits took in all.

    .venv/bin/python scripts/bench_trees.py                            # the supply-chain preset
    .venv/bin/python scripts/bench_trees.py --set data.synthetic.seed=2

It builds the panel's features in a scratch project under ``--workdir`` with the pipeline's own
stages (generate, validate, preprocess), then fits both variants there, one after the other.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import benchparams  # scripts/, beside this file

PRESET = benchparams.ROOT / "configs" / "supply_chain.yaml"
UP_TO = "preprocess"


def build(params: Path, overrides: dict, workdir: Path):
    """A scratch project with the panel framed, split and transformed; (cfg, paths)."""
    import yaml

    from mtl import stagelist
    from mtl.config import apply_overrides, load_config
    from mtl.paths import Paths

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    raw = apply_overrides(yaml.safe_load(params.read_text()), overrides)
    (workdir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg, paths = load_config(workdir / "params.yaml"), Paths.at(workdir)
    for name, stage in stagelist.functions().items():
        with contextlib.redirect_stdout(sys.stderr):
            stage(cfg, paths)
        if name == UP_TO:
            return cfg, paths
    raise SystemExit(f"bench_trees.py: the stage list has no {UP_TO!r} stage")


def figure(task, actual: np.ndarray, forecast: np.ndarray) -> str:
    from mtl.evaluation import forecast as fc
    from mtl.evaluation.metrics import auc

    if task.type == "binary":
        return f"AUC {auc(actual, forecast):.4f}"
    if task.loss == "pinball":
        return f"pinball {fc.pinball(actual, forecast, task.quantile):.4f}"
    return f"WAPE {fc.wape(actual, forecast):.4f}"


def compare(cfg, paths, seed: int) -> str:
    from mtl.data.features import Transform
    from mtl.data.features.shards import open_split
    from mtl.evaluation import gbdt

    t = Transform.load(paths.transform_file)
    train, test = open_split(paths.split_dir("train")).all(), open_split(paths.split_dir("test")).all()
    validation = open_split(paths.split_dir("validation")).all()
    variants = {"summarised": gbdt.summary(list(t.num_inputs), t.panel), "raw lags": None}
    cells: dict[str, list[str]] = {task.name: [] for task in t.tasks}
    head, seconds = [], []
    for variant, matrix in variants.items():
        columns = len(t.cardinalities) + (matrix.shape[1] if matrix is not None else len(t.num_inputs))
        head.append(f"{variant} ({columns} columns)")
        started = time.perf_counter()
        scores = gbdt.fit_predict(train, test, t.tasks, t.targets, t.cardinalities, seed, validation=validation,
                                  matrix=matrix)
        seconds.append(time.perf_counter() - started)
        print(f"{variant}: {seconds[-1]:.0f} s", file=sys.stderr, flush=True)
        for j, task in enumerate(t.tasks):
            rows = np.asarray(test.mask[:, j], dtype=bool)
            actual = np.asarray(test.labels[rows, j], dtype=np.float64)
            if task.type != "binary":
                actual = actual * t.targets[task.name]["std"] + t.targets[task.name]["mean"]
            cells[task.name].append(figure(task, actual, scores[task.name].to_numpy()[rows]))
    lines = ["| task | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    lines += [f"| {name} | " + " | ".join(c) + " |" for name, c in cells.items()]
    lines.append("| seconds, all tasks | " + " | ".join(f"{s:.0f}" for s in seconds) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="/tmp/mtl-bench-trees")
    benchparams.add_set_argument(p, "data.synthetic.seed=2")
    benchparams.add_argument(p, default=PRESET)
    args = p.parse_args()
    overrides = benchparams.set_overrides(args.set)
    cfg = benchparams.load(args.params, overrides, kind="supply_chain")  # before any work
    cfg, paths = build(args.params, overrides, Path(args.workdir))
    print(compare(cfg, paths, cfg.train.seed))


if __name__ == "__main__":
    main()
