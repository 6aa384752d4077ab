"""Streaming preprocessing: split, fit the transform on training rows, write shards.

Two passes over the raw parquet file in chunks of ``features.chunk_rows``: the first fits the
transform on the training rows, the second applies it and writes every split as shards. Memory
is bounded by the chunk size, the vocabularies and the quantile sample, not by the row count.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import Config, DataConfig
from mtl.data import features
from mtl.data.columns import keep_lists
from mtl.data.features import splits
from mtl.data.features.shards import ShardWriter

TEST_RAW = "test_raw.parquet"
TRANSFORM = "transform.json"


def read_chunks(raw_file: Path, columns: list[str], chunk_rows: int,
                progress: str | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first global row number, DataFrame) per chunk; strings arrive dictionary-encoded. With
    ``progress``, the rows read are reported under that name (mtl/progress.py)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mtl.progress import Progress

    schema = pq.ParquetFile(raw_file).schema_arrow
    strings = [c for c in columns if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
    # pre_buffer=False: with it, the reader keeps every row group it has read buffered, so memory
    # would grow with the file instead of staying at one chunk.
    pf = pq.ParquetFile(raw_file, read_dictionary=strings, pre_buffer=False)
    start = 0
    with Progress(progress or "", pf.metadata.num_rows, "rows", enabled=progress is not None) as shown:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            # History columns stay Arrow lists: as a million numpy arrays they would cost seconds.
            # The Arrow types say all; pandas metadata may name a dtype pandas cannot read back.
            frame = batch.to_pandas(types_mapper=keep_lists, ignore_metadata=True)
            yield start, frame
            start += len(frame)
            shown.update(len(frame))


def _columns(data: DataConfig, plan: splits.SplitPlan, names: list[str]) -> list[str]:
    """What preprocessing reads: the schema's columns, the split's, the truth columns and a
    panel's evaluation references (kept with the test rows)."""
    schema = data.schema
    reference = data.panel.reference if data.panel is not None else ()
    wanted = [*schema.required_columns(), *plan.columns, *[c for c in schema.truth.values() if c in names], *reference]
    return [c for c in dict.fromkeys(wanted) if c in names]


def build(raw_file: Path, cfg: Config, out_dir: Path) -> dict:
    """Write ``out_dir`` (transform.json, test_raw.parquet, <split>/ shards); returns a summary.

    The directory is built beside ``out_dir`` and swapped in at the end, so an interrupted run
    leaves the previous features intact.
    """
    started = time.perf_counter()
    if cfg.data.panel is not None:
        framed = out_dir.with_name(out_dir.name + ".framed.parquet")
        try:
            profile = frame_panel(raw_file, cfg, framed)
            return build_examples(framed, cfg, out_dir, started, stats={"panel": profile})
        finally:
            framed.unlink(missing_ok=True)
    return build_examples(raw_file, cfg, out_dir, started)


def frame_panel(raw_file: Path, cfg: Config, out: Path) -> dict:
    """data.panel: the raw daily panel framed into forecast examples with their backtest split
    (mtl/data/features/framing.py), written to ``out``. Returns the profile of the daily rows
    training may see (those before the first validation origin): the drift reference a new batch
    of daily rows is compared with, since a batch is never framed examples."""
    import pyarrow.parquet as pq

    from mtl.data.features import framing

    panel = cfg.data.panel
    names = pq.ParquetFile(raw_file).schema_arrow.names
    wanted = [c for c in dict.fromkeys([*panel.series, panel.time, *panel.static, *panel.daily_columns()])
              if c in names]
    daily = pd.read_parquet(raw_file, columns=wanted)
    examples = framing.frame(daily, panel)
    examples.to_parquet(out, index=False)
    held_out = examples.loc[examples[framing.SPLIT] != "train", framing.ORIGIN]
    seen = pd.to_datetime(daily[panel.time]) < held_out.min() if len(held_out) else slice(None)
    return features.raw_profile(daily[seen], cfg.data.raw_schema)


def build_examples(raw_file: Path, cfg: Config, out_dir: Path, started: float, stats: dict | None = None) -> dict:
    """:func:`build` on a file whose rows are the examples; ``stats`` join the transform's."""
    import pyarrow.parquet as pq

    plan = splits.plan(raw_file, cfg.data)
    columns = _columns(cfg.data, plan, pq.ParquetFile(raw_file).schema_arrow.names)
    transform, rows = _fit(raw_file, cfg, plan, columns)
    transform.stats |= stats or {}
    fitted = time.perf_counter()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    manifests = _write_splits(raw_file, cfg, plan, columns, transform, tmp)
    transform.save(tmp / TRANSFORM)  # and its text vectors beside it, when it has text columns
    summary = {
        "split": transform.split,
        "rows": rows,
        "shards": {name: len(m["shards"]) for name, m in manifests.items()},
        "transform_sha256": transform.fingerprint(),
        "inputs": {"categorical": transform.cat_inputs, "numeric": transform.num_inputs},
    }
    # No timings in the file: the features directory must hash the same when rebuilt from the
    # same raw data (DVC compares it across clones).
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.replace(out_dir)
    return summary | {"seconds": {"fit": round(fitted - started, 2), "total": round(time.perf_counter() - started, 2)}}


def _fit(raw_file: Path, cfg: Config, plan, columns: list[str]):
    """Pass 1: assign every row its split and fit the transform on the training rows.
    Returns (transform, rows per split); an empty split is an error naming it."""
    fitter = features.Fitter(cfg)
    counts = np.zeros(len(splits.SPLITS), dtype=np.int64)
    for start, chunk in read_chunks(raw_file, columns, cfg.features.chunk_rows, "preprocess, pass 1 of 2 (fit)"):
        code = plan.assign(chunk, start)
        counts += np.bincount(code, minlength=len(splits.SPLITS))
        train = code == splits.TRAIN
        fitter.update(chunk[train], start + np.flatnonzero(train))
        fitter.observe_text(chunk)
    rows = dict(zip(splits.SPLITS, counts.tolist()))
    for name, n in rows.items():
        if n == 0:
            raise splits.SplitError(
                f"the {name} split is empty ({int(counts.sum())} rows in total, split {plan.info}); "
                f"provide more rows or change data.split"
            )
    return fitter.finish(plan.info | {"rows": rows}), rows


def _write_splits(raw_file: Path, cfg: Config, plan, columns: list[str], transform, tmp: Path) -> dict:
    """Pass 2: every split's shards through the fitted transform, and the raw test rows.
    Returns each split's shard manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fc = cfg.features
    writers = [ShardWriter(tmp / name, fc.shard_rows) for name in splits.SPLITS]
    keep = [c for c in columns if c not in plan.columns or c in cfg.data.schema.required_columns()]
    raw_schema = pq.ParquetFile(raw_file).schema_arrow
    test_schema = pa.schema([raw_schema.field(c) for c in keep])
    test_writer = pq.ParquetWriter(tmp / TEST_RAW, test_schema)
    try:
        for start, chunk in read_chunks(raw_file, columns, fc.chunk_rows, "preprocess, pass 2 of 2 (transform)"):
            code = plan.assign(chunk, start)
            arrays = features.apply(chunk, transform)
            for i, writer in enumerate(writers):
                writer.write(arrays.take(np.flatnonzero(code == i)))
            test_rows = chunk.loc[code == splits.TEST, keep]
            # Raw test rows, as a served model receives them: evaluation and the champion
            # comparison score them through the model's own packaged transform.
            test_writer.write_table(pa.Table.from_pandas(_undictionary(test_rows), schema=test_schema,
                                                         preserve_index=False))
    finally:
        test_writer.close()
    return {name: w.close() for name, w in zip(splits.SPLITS, writers)}


def _undictionary(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns back to plain values, so the test file looks like served input."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return frame
    return frame.assign(**{c: frame[c].astype(object) for c in cats})
