"""Where the raw impression log comes from: the synthetic generator or the user's own files.

Either way the first stage materialises one canonical parquet file under ``data/01_raw`` plus a
manifest describing its origin, so every later stage reads the same thing. The user's files are
only ever read, never moved or rewritten.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mtl.config import Config
from mtl.paths import Paths

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class SourceError(ValueError):
    """The configured data source cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class SourceFiles:
    files: tuple[Path, ...]
    format: str


def resolve_source(source: str, root: Path) -> SourceFiles:
    """Find the user's files for ``data.source`` (a file, or a folder of one format)."""
    path = Path(source)
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise SourceError(
            f"data.source: {source!r} does not exist (looked at {path}). Point it at a .parquet or "
            f".csv file or a folder of them, or set it to 'synthetic'."
        )
    if path.is_file():
        fmt = SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise SourceError(f"data.source: {path} has suffix {path.suffix!r}; expected .parquet or .csv")
        return SourceFiles((path,), fmt)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise SourceError(f"data.source: folder {path} contains no .parquet or .csv files")
    formats = {SUFFIXES[p.suffix.lower()] for p in files}
    if len(formats) > 1:
        raise SourceError(f"data.source: folder {path} mixes parquet and CSV files; keep one format per folder")
    return SourceFiles(tuple(files), formats.pop())


def fingerprint(files: tuple[Path, ...]) -> str:
    """Content hash of the source files (what DVC would see), streamed."""
    h = hashlib.md5()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _wanted_columns(cfg: Config) -> list[str]:
    schema = cfg.data.schema
    return list(schema.required_columns()) + [c for c in schema.truth.values()]


def ingest(cfg: Config, paths: Paths) -> dict:
    """Copy the schema's columns of the user's files into the canonical raw parquet.

    Columns the schema names but the files lack are simply absent from the copy: validation,
    the next stage, reports them by name. Columns the schema does not name are dropped.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    src = resolve_source(cfg.data.source, paths.root)
    try:
        if src.format == "csv":
            # Read every column as its natural type; validation checks the types against the schema.
            tables = [pacsv.read_csv(f) for f in src.files]
            dataset = ds.dataset(pa.concat_tables(tables, promote_options="permissive"))
        else:
            dataset = ds.dataset([str(f) for f in src.files], format="parquet")
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
        raise SourceError(
            f"data.source: could not read {src.format} data from {cfg.data.source!r}: {err}. "
            f"Check that the files are complete and in that format."
        ) from None
    present = [c for c in _wanted_columns(cfg) if c in dataset.schema.names]
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.raw_file.with_suffix(".parquet.tmp")
    rows = 0
    writer = None
    try:
        for batch in dataset.to_batches(columns=present, batch_size=1 << 20):
            if writer is None:
                writer = pq.ParquetWriter(tmp, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:  # no rows at all: still write the (empty) table so validation can say so
            pq.write_table(dataset.schema.empty_table().select(present), tmp)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(paths.raw_file)
    return {
        "source": cfg.data.source,
        "files": [str(f) for f in src.files],
        "format": src.format,
        "md5": fingerprint(src.files),
        "rows": rows,
        "columns": present,
    }


def materialise_raw(cfg: Config, paths: Paths) -> dict:
    """The `generate` stage: produce data/01_raw from the configured source; returns the manifest."""
    if cfg.data.is_synthetic:
        from mtl.data import synthetic

        rows = synthetic.write(cfg.data.synthetic, paths.raw_file)
        manifest = {"source": "synthetic", "rows": rows, "synthetic": cfg.data.synthetic.model_dump()}
    else:
        manifest = ingest(cfg, paths)
    paths.raw_manifest.write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def check_source_unchanged(cfg: Config, paths: Paths) -> None:
    """Fail if the user's files changed after they were ingested.

    DVC tracks data/01_raw, not files outside the project, so a changed source would otherwise
    be silently ignored by `dvc repro`.
    """
    if cfg.data.is_synthetic or not paths.raw_manifest.exists():
        return
    manifest = json.loads(paths.raw_manifest.read_text())
    if manifest.get("source") != cfg.data.source:
        return  # params changed; DVC reruns generate anyway
    src = resolve_source(cfg.data.source, paths.root)
    if fingerprint(src.files) != manifest.get("md5"):
        raise SourceError(
            f"data.source {cfg.data.source!r} changed since it was ingested into {paths.raw_file}. "
            f"Run `dvc repro --force generate` (or `mtl generate`) to ingest the new version."
        )
