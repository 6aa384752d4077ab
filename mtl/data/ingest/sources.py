"""Where the raw data comes from: a synthetic generator (data.synthetic.kind) or files read by an adapter.

Either way the first stage materialises one canonical parquet file under ``data/01_raw`` plus a
manifest describing its origin, so every later stage reads the same thing. The adapter named by
``data.source`` (mtl/data/ingest/adapters/) knows the layout of the files; this module streams what it
reads into the parquet file, so memory stays bounded whatever the size of the files. The user's
files are only ever read, never moved or rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from mtl.config import Config, DataConfig
from mtl.data.ingest.adapters import SourceError, get_adapter
from mtl.data.ingest.adapters.base import wanted_columns
from mtl.hashing import files_md5
from mtl.names import SYNTHETIC_KINDS
from mtl.paths import Paths
from mtl.registry import resolve

__all__ = ["SourceError", "source_files", "fingerprint", "ingest",
           "materialise_raw", "check_source_unchanged"]

# Rows per parquet row group: adapters yield small batches (a CSV block); readers want big groups.
ROW_GROUP_ROWS = 1 << 18


def _locate(path: str, root: Path, key: str, expects: str) -> Path:
    resolved = Path(path)
    if not resolved.is_absolute():
        resolved = root / resolved
    if not resolved.exists():
        known = ""
        if key == "data.source":  # maybe a misspelt adapter name rather than a path
            from mtl.names import ADAPTERS

            known = f" data.source is either a path or one of {sorted(ADAPTERS)} (with data.path)."
        raise SourceError(
            f"{key}: {path!r} does not exist (looked at {resolved}). Point it at {expects}, "
            f"or set data.source to 'synthetic'.{known}"
        )
    return resolved


def _key(data: DataConfig) -> str:
    """The params.yaml key that names the files (a bare path in data.source is that key)."""
    return "data.source" if data.adapter == "files" and data.path is None else "data.path"


def source_files(data: DataConfig, root: Path) -> tuple[Path, list[Path]]:
    """The configured path (resolved against ``root``) and the files its adapter will read."""
    adapter = get_adapter(data.adapter)
    key = _key(data)
    path = _locate(data.source_path, root, key, adapter.expects)
    try:
        return path, adapter.files(path)
    except SourceError as err:
        raise SourceError(f"{key}: {err}") from None


def fingerprint(files: list[Path] | tuple[Path, ...], base: Path | None = None) -> str:
    """Content hash of the source files and their names below ``base`` (what DVC would see), streamed."""
    def name(f: Path) -> bytes:
        return (f.relative_to(base).as_posix() if base is not None and base in f.parents else f.name).encode()

    return files_md5(files, name)


def _base(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def ingest(cfg: Config, paths: Paths) -> dict:
    """Stream the schema's columns of the configured files into the canonical raw parquet.

    Columns the schema names but the files lack are simply absent from the copy: validation,
    the next stage, reports them by name. Columns the schema does not name are dropped; the
    split column is kept when the data (or the adapter, from file names) has one.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    adapter = get_adapter(cfg.data.adapter)
    path, files = source_files(cfg.data, paths.home)
    reading = adapter.read(files, cfg)
    keep = [c for c in wanted_columns(cfg.data) if c in reading.schema.names]
    schema = pa.schema([reading.schema.field(c) for c in keep])
    window = _window(adapter, files, cfg)
    split_col = cfg.data.split.column
    splits: dict[str, int] = {}
    rows = 0
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.raw_file.with_suffix(".parquet.tmp")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            buffered: list[pa.RecordBatch] = []
            buffered_rows = 0
            for batch in reading.batches:
                batch = batch.select(keep)
                if window is not None:
                    batch = batch.filter(pa.array(_time_ns(batch, cfg.data.raw_schema.time) >= window[0]))
                if split_col in keep:
                    for item in pc.value_counts(batch.column(split_col)).to_pylist():
                        splits[str(item["values"])] = splits.get(str(item["values"]), 0) + item["counts"]
                buffered.append(batch)
                buffered_rows += batch.num_rows
                rows += batch.num_rows
                if buffered_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(buffered, schema), row_group_size=ROW_GROUP_ROWS)
                    buffered, buffered_rows = [], 0
            if buffered:
                writer.write_table(pa.Table.from_batches(buffered, schema), row_group_size=ROW_GROUP_ROWS)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(paths.raw_file)  # atomic: a failed ingest never leaves a half-written log behind
    manifest = {
        "source": cfg.data.source,
        "adapter": adapter.name,
        "path": cfg.data.source_path,
        "files": [str(f) for f in files],
        "format": adapter.format,
        "md5": fingerprint(files, _base(path)),
        "rows": rows,
        "columns": keep,
    }
    if splits:
        manifest["splits"] = splits
    if window is not None:
        manifest["window"] = {"days": cfg.data.window_days, "from": str(window[0]), "to": str(window[1])}
    return manifest


def _time_ns(batch, column: str):
    from mtl.data.features.splits import to_naive_ns

    return to_naive_ns(batch.column(column).to_pandas())


def _window(adapter, files: list[Path], cfg: Config):
    """(first kept instant, last day) of the data.window_days sliding window, or None.

    The window is whole days counted back from the newest day in the files, so the same files
    always give the same window whatever the wall-clock time of the run.
    """
    import numpy as np
    import pandas as pd

    days, time_col = cfg.data.window_days, cfg.data.raw_schema.time
    if days is None:
        return None
    newest = None
    for batch in adapter.read(files, cfg).batches:
        if time_col not in batch.schema.names:
            raise SourceError(f"data.window_days: the files have no {time_col!r} column (data.schema.time) "
                              f"to count days of; add it or set data.window_days to null")
        t = _time_ns(batch, time_col)
        t = t[~np.isnat(t)]
        if len(t):
            newest = t.max() if newest is None else max(newest, t.max())
    if newest is None:
        raise SourceError(f"data.window_days: column {time_col!r} has no values in {len(files)} file(s)")
    last_day = np.datetime64(pd.Timestamp(newest).floor("D"), "ns")
    return last_day - np.timedelta64(days - 1, "D"), last_day


def materialise_raw(cfg: Config, paths: Paths) -> dict:
    """The `generate` stage: produce data/01_raw from the configured source; returns the manifest."""
    if cfg.data.is_synthetic:
        write = resolve(SYNTHETIC_KINDS, cfg.data.synthetic.kind)
        rows = write(cfg.data.synthetic, paths.raw_file)
        manifest = {"source": "synthetic", "rows": rows, "synthetic": cfg.data.synthetic.model_dump()}
    else:
        manifest = ingest(cfg, paths)
    paths.raw_manifest.write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def source_changed(data: DataConfig, paths: Paths) -> bool:
    """True when the configured files differ from what data/01_raw was ingested from (same
    source and path, new bytes): DVC cannot see that, so `generate` must be forced."""
    if data.is_synthetic or not paths.raw_manifest.exists():
        return False
    manifest = json.loads(paths.raw_manifest.read_text())
    if (manifest.get("adapter"), manifest.get("path")) != (data.adapter, data.source_path):
        return False  # params changed; DVC reruns generate anyway
    path, files = source_files(data, paths.home)
    return fingerprint(files, _base(path)) != manifest.get("md5")


def check_source_unchanged(data: DataConfig, paths: Paths) -> None:
    """Fail if the user's files changed after they were ingested.

    DVC tracks data/01_raw, not files outside the project, so a changed source would otherwise
    be silently ignored by `dvc repro`.
    """
    if source_changed(data, paths):
        raise SourceError(
            f"{_key(data)} {data.source_path!r} changed since it was ingested into {paths.raw_file}. "
            f"Run `dvc repro --force generate` (or `mtl generate`) to ingest the new version."
        )
