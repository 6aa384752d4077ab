"""Benchmark: the full validation (GX suite, leakage and drift checks) of a 10M-row log.

    python scripts/bench_validation.py [--rows 10000000] [--data .bench-data]   (or: make bench-validation)

Generates the default synthetic log once (cached under --data), fits a transform on a separate
1M-row log of another seed as the champion's drift reference, then runs exactly what the validate
stage runs (read the log, GX Checkpoint with Data Docs, leakage, drift) in a fresh process, so the
figures include importing Great Expectations and the peak memory is that process's alone.
Target (issue 7): at most 20 s and 4 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import benchparams  # scripts/, beside this file

ROOT = benchparams.ROOT


def _config(params: Path, rows: int, seed: int):
    return benchparams.load(params, {"data.synthetic.rows": rows, "data.synthetic.seed": seed})


def prepare(params: Path, rows: int, data: Path) -> tuple[Path, Path]:
    """The log to validate and the reference transform (cached per generator settings)."""
    import pandas as pd

    from mtl.data import features
    from mtl.data.ingest import synthetic

    data.mkdir(parents=True, exist_ok=True)
    key = benchparams.log_key(_config(params, rows, 42))
    log = data / f"synthetic_{rows}_{key}.parquet"
    if not log.is_file():
        t = time.perf_counter()
        synthetic.write(_config(params, rows, 42).data.synthetic, log)
        print(f"generated {rows:,} rows in {time.perf_counter() - t:.0f} s -> {log}")
    reference = data / f"reference_transform_{key}.json"
    if not reference.is_file():
        cfg = _config(params, 1_000_000, 42)  # the champion was trained on earlier data of the same world
        sample = data / "reference_1m.parquet"
        synthetic.write(cfg.data.synthetic, sample)
        features.fit(pd.read_parquet(sample), cfg).save(reference)
        sample.unlink()
    return log, reference


def measure(params: Path, log: Path, reference: Path, docs: Path) -> dict:
    """Runs in the child process: the validate stage's work, timed step by step."""
    started = time.perf_counter()
    from mtl.data.features import Transform
    from mtl.data.contracts.validation import validate_file

    cfg = _config(params, 10, 42)
    t = Transform.load(reference)
    ref = {"name": "reference", "stats": t.stats, "categorical": t.categorical}
    # what the validate stage calls: imports GX while reading, then the suite (Checkpoint and Data
    # Docs), the leakage check and the drift checks
    report = validate_file(log, cfg, docs_dir=docs, reference=ref, expectations=ROOT / cfg.validation.expectations)
    done = time.perf_counter()
    kinds: dict[str, int] = {}
    for c in report.checks:
        kinds[c.expectation] = kinds.get(c.expectation, 0) + 1
    return {
        "rows": report.rows, "success": report.success, "checks": len(report.checks),
        "warnings": len(report.warnings()), "failures": [c.detail for c in report.failures()],
        "total_s": done - started, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=ROOT / ".bench-data")
    benchparams.add_argument(parser)
    parser.add_argument("--child", nargs=3, metavar=("LOG", "REFERENCE", "DOCS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.params, *map(Path, args.child))))
        return
    log, reference = prepare(args.params, args.rows, args.data)
    docs = args.data / "data_docs"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, "--params", str(args.params), "--child", str(log), str(reference),
                          str(docs)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(out.stderr)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"validation of {r['rows']:,} rows on {os.cpu_count()} cores: {r['checks']} checks "
          f"({'passed' if r['success'] else 'FAILED'}, {r['warnings']} warnings)")
    print(f"  {r['total_s']:.1f} s from a cold start: importing GX, reading the log, the GX suite with Data Docs, "
          f"leakage and drift (target <= 20 s)")
    print(f"  peak memory {r['peak_rss_gb']:.2f} GB (target <= 4 GB)")
    for f in r["failures"]:
        print(f"  failure: {f}")


if __name__ == "__main__":
    main()
