"""Benchmark the `preprocess` stage: rows/s and peak resident memory at growing row counts.

    .venv/bin/python scripts/bench_preprocess.py                 # 1M, 10M, 100M rows
    .venv/bin/python scripts/bench_preprocess.py --sizes 1M,10M  # a quicker look

For each size it generates the default synthetic log once (cached in --workdir; generation is
not timed), then runs the same streaming build that `mtl preprocess` runs (split, fit the
transform on the training days, write shards and the raw test rows) in a fresh child process,
and reports that child's wall time and peak RSS, so sizes do not share memory or warm caches.
The settings are params.yaml's (or --params FILE's), with only data.synthetic.rows changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import benchparams  # scripts/, beside this file



def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def child(params: Path, raw: Path, out: Path, rows: int) -> None:
    from mtl.data.features.preprocess import build

    cfg = benchparams.load(params, {"data.synthetic.rows": rows})
    summary = build(raw, cfg, out)
    print(json.dumps({"seconds": summary["seconds"]["total"], "fit_seconds": summary["seconds"]["fit"],
                      "rows": summary["rows"], "shards": summary["shards"]}))


def ensure_raw(params: Path, workdir: Path, rows: int) -> Path:
    from mtl.data.ingest import synthetic

    cfg = benchparams.load(params, {"data.synthetic.rows": rows})
    raw = workdir / f"raw_{rows}_{benchparams.log_key(cfg)}.parquet"  # another --params: another log
    if not raw.exists():
        started = time.perf_counter()
        synthetic.write(cfg.data.synthetic, raw)
        print(f"  generated {rows:,} rows in {time.perf_counter() - started:.0f} s ({raw.stat().st_size / 1e9:.1f} GB)",
              flush=True)
    return raw


def measure(params: Path, raw: Path, out: Path, rows: int) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--params", str(params), "--child", str(raw), str(out),
                             str(rows)],
                            stdout=subprocess.PIPE, text=True)
    wall_start = time.perf_counter()
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not a running maximum
    wall = time.perf_counter() - wall_start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"preprocess failed for {rows:,} rows (exit {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result | {"wall": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1M,10M,100M")
    p.add_argument("--workdir", default="/tmp/mtl-bench-preprocess", help="cache of generated logs and outputs")
    benchparams.add_argument(p)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.params, Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    benchparams.load(args.params)  # a params file that cannot generate the log stops here, before any work
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"preprocess benchmark on {os.cpu_count()} CPU cores; settings from {args.params}")
    results = []
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        print(f"{size:,} rows:", flush=True)
        raw = ensure_raw(args.params, workdir, size)
        out = workdir / f"features_{size}"
        r = measure(args.params, raw, out, size)
        shutil.rmtree(out, ignore_errors=True)
        results.append((size, r))
        print(f"  preprocess {r['seconds']:.1f} s (process {r['wall']:.1f} s), {size / r['seconds']:,.0f} rows/s, "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
    print("\n| rows | preprocess (s) | rows/s | s per 1M rows | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for size, r in results:
        print(f"| {size:,} | {r['seconds']:.1f} | {size / r['seconds']:,.0f} | {r['seconds'] / size * 1e6:.2f} | "
              f"{r['peak_rss_mb']:,.0f} |")


if __name__ == "__main__":
    main()
