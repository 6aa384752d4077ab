"""The supply-chain preset's quality over several seeds: the multi-task TCN beside seasonal naive,
boosted trees, its own single-task versions and the oracle, as mean ± std.

    .venv/bin/python scripts/bench_supply_chain.py                    # seeds 1-3, the preset's default panel
    .venv/bin/python scripts/bench_supply_chain.py --seeds 1 --set data.synthetic.items=100

Each seed is one in-process run of the pipeline's own stages (generate, validate, preprocess,
baseline, train, score, evaluate) in a scratch project under ``--workdir`` built from
configs/supply_chain.yaml, with ``evaluation.baselines: [single_task, trees]`` (the preset trains
only the trees, to stay within its time budget) and the seed as every seed of the run: the
panel's (``data.synthetic.seed``), the training's and the trees'. So the spread covers a new
panel from the same process as well as a new initialisation.

Printed, as Markdown: per task the model's figures beside the baselines' on the same test
origins (WAPE, MASE and RMSSE against seasonal naive, bias and pinball for demand; AUC for the
binary tasks), the paired differences the issue's targets are about (WAPE reduction against
naive, model minus trees, Δm over the single-task models), the stocking decision's cost, and per
seed the tasks whose gain over their single-task version lies beyond noise, either way.
``--json`` keeps each seed's evaluation; a rerun with the same file skips the seeds it holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import benchparams  # scripts/, beside this file

ROOT = benchparams.ROOT

PRESET = ROOT / "configs" / "supply_chain.yaml"


def seed_overrides(seed: int, overrides: dict) -> dict:
    return {"data.synthetic.seed": seed, "train.seed": seed, "evaluation.seed": seed, "train.progress": False,
            "evaluation.baselines": ["single_task", "trees"], **overrides}


def run_seed(params: Path, seed: int, workdir: Path, overrides: dict) -> dict:
    """One run of the chain up to evaluate; the evaluation payload and the stage times."""
    import yaml

    from mtl import stagelist
    from mtl.config import apply_overrides, load_config
    from mtl.paths import Paths

    root = workdir / f"seed{seed}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    raw = apply_overrides(yaml.safe_load(params.read_text()), seed_overrides(seed, overrides))
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    seconds = {}
    for name, stage in stagelist.functions().items():
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the stages' own reports; stdout is the table
            stage(cfg, paths)
        seconds[name] = round(time.perf_counter() - started, 1)
        if name == "evaluate":  # the figures are in; gate and promote would only register it
            break
    baseline = json.loads(paths.baseline_info.read_text())
    return {"seed": seed, "seconds": seconds, "baseline_seconds": {"single_task": baseline.get("seconds"),
                                                                   "trees": baseline.get("gbdt_seconds")},
            "evaluation": json.loads(paths.metrics_file.read_text())}


def figures(result: dict) -> dict[str, float]:
    """The flat figures of one seed's evaluation (NaN where a figure is absent)."""
    ev = result["evaluation"]
    tasks = ev["tasks"]
    out: dict[str, float] = {}

    def put(key, value):
        out[key] = float(value) if value is not None else float("nan")

    gain = (ev.get("mtl_gain") or {}).get("tasks", {})
    for task in (t for t, e in tasks.items() if e.get("forecast")):
        f = tasks[task]["forecast"]  # the model's figures, with naive's and the oracle's inside
        for metric in ("wape", "mase", "rmsse", "bias", "pinball", "coverage"):
            for who, where in (("model", f), ("naive", f.get("naive", {})), ("oracle", f.get("oracle", {})),
                               ("trees", tasks[task].get("gbdt", {}))):
                if metric in where:
                    put(f"{task}.{metric}.{who}", where[metric])
    for task in (t for t, e in tasks.items() if e.get("type") == "binary"):
        e = tasks[task]
        put(f"{task}.auc.model", e.get("auc"))
        put(f"{task}.auc.oracle", e.get("oracle_auc"))
        put(f"{task}.auc.trees", e.get("gbdt", {}).get("auc"))
    for task, g in gain.items():  # the single-task model's value of the task's gain metric
        put(f"{task}.{g['metric']}.single_task", g.get("baseline"))
    put("delta_m", (ev.get("mtl_gain") or {}).get("delta_m"))
    for policy, cost in (ev.get("decision_cost") or {}).get("policies", {}).items():
        put(f"cost.{policy}", cost["cost"])
    return out


def mean_std(values: list[float], digits: int = 4, scale: float = 1.0) -> str:
    v = np.array(values, dtype=float) * scale
    v = v[np.isfinite(v)]
    if not len(v):
        return "-"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def metric_rows(result: dict) -> list[tuple[str, str]]:
    """(task, metric) of the table, in the preset's task order: a mean forecast's accuracy, a
    quantile's pinball and coverage, an event's AUC."""
    rows = []
    for task, e in result["evaluation"]["tasks"].items():
        if e.get("forecast", {}).get("quantile") is not None:
            rows += [(task, "pinball"), (task, "coverage")]
        elif e.get("forecast"):
            rows += [(task, m) for m in ("wape", "mase", "rmsse", "bias")]
        elif e.get("type") == "binary":
            rows.append((task, "auc"))
    return rows


def table(results: list[dict]) -> str:
    flat = [figures(r) for r in results]

    def col(key):
        return [f.get(key, float("nan")) for f in flat]

    def paired(a, b, relative=False):
        x, y = np.array(col(a)), np.array(col(b))
        return list((x - y) / y if relative else x - y)

    who = ("model", "single_task", "trees", "naive", "oracle")
    lines = [f"Seeds {[r['seed'] for r in results]} (mean ± std over seeds).", "",
             "| task | metric | " + " | ".join(who) + " |", "|---|---|" + "---|" * len(who)]
    for task, metric in metric_rows(results[0]):
        cells = [mean_std(col(f"{task}.{metric}.{w}")) for w in who]
        if all(c == "-" for c in cells):
            continue
        lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", "| paired, per seed | mean ± std |", "|---|---|",
              f"| demand WAPE, change from seasonal naive | "
              f"{mean_std(paired('demand.wape.model', 'demand.wape.naive', True), 1, 100)} % |",
              f"| demand WAPE, model − trees | {mean_std(paired('demand.wape.model', 'demand.wape.trees'))} |",
              f"| demand WAPE, model − single-task | {mean_std(paired('demand.wape.model', 'demand.wape.single_task'))} |",
              *(f"| {t} pinball, model − trees | {mean_std(paired(f'{t}.pinball.model', f'{t}.pinball.trees'))} |"
                for t, m in metric_rows(results[0]) if m == "pinball"),
              f"| stock-out AUC, model − trees | {mean_std(paired('stockout.auc.model', 'stockout.auc.trees'))} |",
              f"| stock-out AUC, model − single-task | {mean_std(paired('stockout.auc.model', 'stockout.auc.single_task'))} |",
              f"| late-delivery AUC, model − trees | {mean_std(paired('late_delivery.auc.model', 'late_delivery.auc.trees'))} |",
              f"| Δm over the single-task models | {mean_std(col('delta_m'), 2, 100)} % |"]
    policies = sorted({k[5:] for f in flat for k in f if k.startswith("cost.")})
    if policies:
        lines += ["", "| stocking policy | cost on the test origins | vs seasonal naive |", "|---|---|---|"]
        for p in policies:
            rel = paired(f"cost.{p}", "cost.seasonal naive", True) if "seasonal naive" in policies else []
            lines.append(f"| {p} | {mean_std(col(f'cost.{p}'), 0)} | {mean_std(rel, 1, 100)} % |")
    lines += per_seed_gain(results)
    secs = {k: mean_std([r["seconds"].get(k, float('nan')) for r in results], 0)
            for k in ("preprocess", "baseline", "train", "evaluate")}
    lines += ["", "Seconds per seed: " + ", ".join(f"{k} {v}" for k, v in secs.items())
              + "; single-task " + mean_std([r["baseline_seconds"]["single_task"] for r in results], 0)
              + ", trees " + mean_std([r["baseline_seconds"]["trees"] for r in results], 0) + "."]
    return "\n".join(lines)


def per_seed_gain(results: list[dict]) -> list[str]:
    """Each seed's Δm and the tasks whose gain over their single-task version lies beyond noise
    (the evaluation's paired bootstrap on that seed's test origins), either way."""
    lines = []
    for r in results:
        gain = r["evaluation"].get("mtl_gain") or {}
        if gain.get("delta_m") is None:
            continue
        better = [t for t, g in gain["tasks"].items() if g.get("gain_interval") and g["gain_interval"][0] > 0]
        worse = [t for t, g in gain["tasks"].items() if g.get("gain_interval") and g["gain_interval"][1] < 0]
        lines.append(f"- seed {r['seed']}: Δm {gain['delta_m']:+.2%}; better than single-task beyond noise on "
                     f"{', '.join(better) or 'no task'}; worse beyond noise on {', '.join(worse) or 'no task'}")
    return ["", "Against the single-task versions, per seed (paired bootstrap on its test origins):", *lines] if lines else []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--workdir", default="/tmp/mtl-bench-supply-chain")
    p.add_argument("--json", help="keep each seed's evaluation here; a rerun skips the seeds it holds")
    benchparams.add_set_argument(p, "train.epochs=4")
    benchparams.add_argument(p, default=PRESET)
    args = p.parse_args()
    overrides = benchparams.set_overrides(args.set)
    benchparams.load(args.params, seed_overrides(1, overrides), kind="supply_chain")  # before any work
    store = Path(args.json) if args.json else None
    results = json.loads(store.read_text()) if store and store.is_file() else []
    done = {r["seed"] for r in results}
    for seed in (int(s) for s in args.seeds.split(",")):
        if seed in done:
            continue
        started = time.perf_counter()
        results.append(run_seed(args.params, seed, Path(args.workdir), overrides))
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if store:
            store.write_text(json.dumps(results, indent=1))
    print(table(sorted(results, key=lambda r: r["seed"])))


if __name__ == "__main__":
    main()
