"""Per-task test AUC of every architecture, several seeds, on the default synthetic log.

    .venv/bin/python scripts/quality_table.py                       # all architectures, seeds 1-3
    .venv/bin/python scripts/quality_table.py --arch mmoe,single_task --seeds 1,2 --rows 300000
    .venv/bin/python scripts/quality_table.py --arch mmoe --inputs base,sequence,text,sequence+text  # README table
    .venv/bin/python scripts/quality_table.py --interactions none,fm,dcn_v2   # architecture x interaction

Preprocesses the log once (params.yaml settings, data.synthetic.rows overridable), then trains
each architecture with each seed through the same trainer `mtl train` uses, scores the test
split through the served-model path and prints mean ± std of each task's AUC beside the oracle
AUC (the log records every label's true probability) as a Markdown table. Funnel tasks also get
their AUC given the parent (CVR on clicks). Hyper-parameters are params.yaml's for every model.

``--inputs`` compares what the model reads: ``base`` (the schema's categorical and numeric
columns), ``sequence`` (plus the users' histories), ``text`` (plus item titles through the
sentence encoder) or both. The features are built once with every input; a variant's model just
leaves out the encoders it does not use, so all variants see identical rows. ``--interactions``
trains each architecture with each ``model.interaction`` (the rest of params.yaml as shipped).
Each AUC column is followed by the share of the oracle's lift over random the model captures,
(AUC - 0.5) / (oracle AUC - 0.5). Regression tasks get their test RMSE. When ``single_task`` is
among the architectures, every other model (same interaction and inputs) also gets Δm, the mean
relative gain over all tasks against the single-task model of the same seed (AUC up, RMSE down:
Maninis et al., 2019), as mean ± std over the seeds.

``--json`` is written after every run, and a rerun with the same file skips the runs it holds:
an interrupted table resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import benchparams  # scripts/, beside this file


def main() -> None:
    from mtl.models import ARCHITECTURES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default=",".join(ARCHITECTURES))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--rows", type=int, default=None, help="synthetic rows (default: params.yaml)")
    p.add_argument("--inputs", default="base", help="comma-separated: base, sequence, text, sequence+text")
    p.add_argument("--workdir", default="/tmp/mtl-quality")
    p.add_argument("--interactions", default=None, help="comma-separated model.interaction values (default: params.yaml's)")
    p.add_argument("--json", help="write the raw results here after every run; a rerun skips the runs it holds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting for every model (YAML value), e.g. --set model.norm=batch")
    benchparams.add_argument(p)
    args = p.parse_args()
    if any("=" not in kv for kv in args.set):
        benchparams.fail(f"--set takes KEY=VALUE, got {[kv for kv in args.set if '=' not in kv]}")

    import pandas as pd

    from mtl.data.ingest import synthetic
    from mtl.data.features import Transform
    from mtl.data.features.preprocess import TEST_RAW, TRANSFORM, build
    from mtl.data.features.shards import open_split
    from mtl.evaluation.evaluate import evaluate_scores
    from mtl.models.layers import InputSpec
    from mtl.scoring import Scorer
    from mtl.training import loop

    import yaml

    overrides = {"train.progress": False} | {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    if args.rows:
        overrides["data.synthetic.rows"] = args.rows
    variants = args.inputs.split(",")
    if any("sequence" in v for v in variants):
        overrides["data.schema.sequence"] = {"hist_item_ids": "item_id", "hist_category_ids": "category_id"}
    if any("text" in v for v in variants):
        overrides["data.schema.text"] = ["title"]
    cfg = benchparams.load(args.params, overrides)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    raw = work / f"raw_{cfg.data.synthetic.rows}.parquet"
    if not raw.exists():
        synthetic.write(cfg.data.synthetic, raw)
    features = work / f"features_{cfg.data.synthetic.rows}"
    build(raw, cfg, features)
    transform = Transform.load(features / TRANSFORM)
    train_rows, val = open_split(features / "train"), open_split(features / "validation").all()
    test_rows = pd.read_parquet(features / TEST_RAW)
    full = InputSpec.from_transform(transform, cfg.data.schema.scenario)
    table_ = transform.text_table()

    results: dict[str, list[dict]] = {}
    done: dict[str, dict[str, dict]] = {}  # name -> seed -> metrics, kept across reruns
    if args.json and Path(args.json).exists():
        done = json.loads(Path(args.json).read_text())
    interactions = args.interactions.split(",") if args.interactions else [None]
    for arch, interaction, variant in ((a, i, v) for a in args.arch.split(",") for i in interactions for v in variants):
        parts = set(variant.split("+"))
        spec = replace(full, seq_shares=full.seq_shares if "sequence" in parts else (),
                       n_text=full.n_text if "text" in parts else 0)
        name = ", ".join([arch] + ([interaction] if interaction else []) + ([variant] if variants != ["base"] else []))
        chosen = {"model.interaction": interaction} if interaction else {}
        for seed in (int(s) for s in args.seeds.split(",")):
            if str(seed) in done.get(name, {}):
                results.setdefault(name, []).append(done[name][str(seed)] | {"seed": seed})
                print(f"{name} seed {seed}: from {args.json}", flush=True)
                continue
            run_cfg = benchparams.load(args.params,
                                       overrides | chosen | {"model.architecture": arch, "train.seed": seed})
            started = time.perf_counter()
            result = loop.train(train_rows, val, spec, transform.tasks, run_cfg, text_table=table_)
            scores = Scorer(transform, result.model).predict(test_rows)
            metrics = evaluate_scores(scores, test_rows, run_cfg)
            metrics = {t: {k: v for k, v in m.items() if k != "slices"} for t, m in metrics.items()}
            results.setdefault(name, []).append(metrics | {"seed": seed})
            if args.json:
                done.setdefault(name, {})[str(seed)] = metrics
                Path(args.json).write_text(json.dumps(done, indent=1, default=float))
            aucs = ", ".join(f"{t} {m['auc']:.4f}" if m.get("auc") is not None else f"{t} RMSE {m['rmse']:.3f}"
                             for t, m in metrics.items() if m.get("auc") is not None or m.get("rmse") is not None)
            print(f"{name} seed {seed}: {aucs} (best epoch {result.best_epoch}, "
                  f"{result.samples_per_second:,.0f} samples/s, {time.perf_counter() - started:.0f} s)", flush=True)

    print()
    print(table(results, cfg))


def table(results: dict[str, list[dict]], cfg) -> str:
    """Markdown: one row per architecture, mean ± std AUC per task, the oracle in the last row."""
    first = next(iter(results.values()))[0]
    columns = []  # (header, task, key)
    for t in cfg.tasks:
        if t.type != "binary":
            continue
        columns.append((t.name, t.name, "auc"))
        for key in first[t.name]:
            if key.startswith("auc_given_"):
                columns.append((f"{t.name} given {key[len('auc_given_'):]}", t.name, key))
    columns += [(f"{t.name} RMSE", t.name, "rmse") for t in cfg.tasks if t.type != "binary"]
    lifts = [task for _, task, key in columns if key == "auc" and first[task].get("oracle_auc")]
    baselines = {name: runs for name, runs in results.items() if name.split(", ")[0] == "single_task"}
    with_gain = bool(baselines) and len(baselines) < len(results)
    lines = ["| model | " + " | ".join(h for h, _, _ in columns) + " | "
             + " | ".join(f"{t} % of oracle lift" for t in lifts) + (" | Δm vs single_task |" if with_gain else " |"),
             "|---|" + "---:|" * (len(columns) + len(lifts) + with_gain)]
    for arch, runs in results.items():
        cells = []
        for _, task, key in columns:
            v = np.array([r[task][key] for r in runs], dtype=float)
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}")
        for task in lifts:
            lift = np.array([(r[task]["auc"] - 0.5) / (r[task]["oracle_auc"] - 0.5) for r in runs])
            cells.append(f"{100 * lift.mean():.1f}")
        if with_gain:
            cells.append(_delta_m(runs, baselines.get(", ".join(["single_task", *arch.split(", ")[1:]]), [])))
        lines.append(f"| {arch} | " + " | ".join(cells) + " |")
    oracle = [f"{first[task]['oracle_auc']:.4f}" if key == "auc" and first[task].get("oracle_auc") else "-"
              for _, task, key in columns]
    lines.append("| oracle (true probabilities) | " + " | ".join(oracle) + " |" + " 100 |" * len(lifts)
                 + (" |" if with_gain else ""))
    return "\n".join(lines)


def _delta_m(runs: list[dict], baseline: list[dict]) -> str:
    """Mean relative gain over every task against the single-task run of the same seed, mean ±
    std over the seeds both have ("-" for the baseline itself or without one)."""
    by_seed = {r["seed"]: r for r in baseline}
    gains = []
    for r in runs:
        b = by_seed.get(r["seed"])
        if b is None or b is r:
            continue
        rel = []
        for task, m in r.items():
            if task == "seed" or task not in b:
                continue
            if m.get("auc") is not None and b[task].get("auc"):
                rel.append((m["auc"] - b[task]["auc"]) / b[task]["auc"])
            elif m.get("rmse") is not None and b[task].get("rmse"):
                rel.append((b[task]["rmse"] - m["rmse"]) / b[task]["rmse"])
        gains.append(100 * sum(rel) / len(rel))
    if not gains:
        return "-"
    g = np.array(gains)
    return f"{g.mean():+.2f}% ± {g.std(ddof=1) if len(g) > 1 else 0:.2f}"


if __name__ == "__main__":
    main()
