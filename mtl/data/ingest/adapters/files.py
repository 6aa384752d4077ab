"""The generic adapter: your own parquet or CSV file, or a folder of them, described by data.schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mtl.data.ingest.adapters.base import (
    Adapter,
    Reading,
    SourceError,
    check_delimiter,
    check_not_empty,
    conform,
    is_csv,
    iter_csv,
    split_of,
    wanted_columns,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mtl.config import Config

PARQUET_SUFFIXES = (".parquet", ".pq")


def format_of(path: Path) -> str | None:
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "csv" if is_csv(path) else None


class Files(Adapter):
    """Your own parquet/CSV file or folder (searched recursively; one format per folder).

    Only the columns data.schema names (plus truth and split columns) are kept; a column the
    schema names but no file has is left out, and validation reports it by name. A column some
    files lack is null in their rows.

    Types are made consistent across files so they fit one parquet schema. Parquet files keep
    their types, widened where files differ (int32 and int64 -> int64, int and float -> float);
    a categorical column that is a number in one file and text in another becomes text. CSV
    carries no types, so from CSV: numeric features, regression labels and truth columns are
    float64; categorical, scenario and split columns are text (a stray non-numeric id deep in a
    file cannot then break the ingest); binary labels and the time column keep the type pyarrow
    infers from the first rows of each file. Any other clash is an error naming the files.

    Split: a column named data.split.column is kept. Without one, a folder whose files are all
    named (or foldered) train / val / test gets that column from the names.
    """

    name = "files"

    expects = "a .parquet or .csv file, or a folder of them (one format per folder)"

    def files(self, path: Path) -> list[Path]:
        if path.is_file():
            if format_of(path) is None:
                raise SourceError(f"{path} has suffix {path.suffix!r}; expected .parquet or .csv")
            return [path]
        found = sorted(p for p in path.rglob("*") if p.is_file() and format_of(p) is not None)
        if not found:
            raise SourceError(f"folder {path} contains no .parquet or .csv files")
        if len({format_of(p) for p in found}) > 1:
            raise SourceError(f"folder {path} mixes parquet and CSV files; keep one format per folder")
        return found

    def read(self, files: list[Path], cfg: "Config") -> Reading:
        import pyarrow as pa

        fmt = format_of(files[0])
        wanted = wanted_columns(cfg.data)
        split_col = cfg.data.split.column
        headers = {f: self._inspect(f, fmt) for f in files}
        types_by_file = {f: _types(schema, fmt, cfg) for f, schema in headers.items()}
        present = [c for c in wanted if any(c in t for t in types_by_file.values())]
        schema = _unify(present, types_by_file, cfg)
        derived = {} if split_col in present else splits_from_names(files)
        if derived:
            schema = schema.append(pa.field(split_col, pa.string()))
        batches = self._batches(files, fmt, headers, types_by_file, schema, derived, split_col)
        return Reading(schema, batches)

    # ---------------------------------------------------------------------------------------

    def _inspect(self, path: Path, fmt: str) -> "pa.Schema":
        """The file's columns and types (CSV: inferred from the first rows)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        check_not_empty(path, "files")
        try:
            schema = pq.read_schema(path) if fmt == "parquet" else pacsv.open_csv(str(path)).schema
        except (pa.ArrowInvalid, OSError) as err:
            raise SourceError(
                f"could not read {fmt} data from {path}: {err}. Check that the file is complete and in that format."
            ) from None
        if fmt == "csv":
            check_delimiter(schema.names, path, "files")
        return schema

    def _batches(self, files, fmt, headers, types_by_file, schema, derived, split_col) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for f in files:
            constants = {split_col: derived[f]} if derived else {}
            in_file = [c for c in schema.names if c in types_by_file[f]]
            if fmt == "csv":
                types = {c: schema.field(c).type for c in in_file}
                yield from iter_csv(f, "files", headers[f].names, in_file, types, schema, constants)
                continue
            try:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=1 << 16, columns=in_file):
                    yield conform(batch, schema, constants)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as err:
                raise SourceError(
                    f"could not read parquet data from {f}: {err}. Check that the file is complete and in that format."
                ) from None


def _types(schema: "pa.Schema", fmt: str, cfg: "Config") -> dict[str, "pa.DataType"]:
    """The wanted columns of one file and their types (CSV: forced by role where one is fixed)."""
    import pyarrow as pa

    wanted = set(wanted_columns(cfg.data))
    types = {}
    for field in schema:
        if field.name not in wanted:
            continue
        t = field.type
        if pa.types.is_dictionary(t):  # pandas categoricals: compare the values, not the codes
            t = t.value_type
        if fmt == "csv":
            t = _csv_role_type(field.name, cfg) or t
        types[field.name] = t
    return types


def _csv_role_type(column: str, cfg: "Config") -> "pa.DataType | None":
    import pyarrow as pa

    schema = cfg.data.raw_schema
    regression = {t.label for t in cfg.raw_tasks if t.type == "regression"}
    if column in schema.numeric or column in regression or column in schema.truth.values():
        return pa.float64()
    if column in schema.categorical or column in (schema.scenario, cfg.data.split.column):
        return pa.string()
    return None


def _unify(columns: list[str], types_by_file: dict[Path, dict], cfg: "Config") -> "pa.Schema":
    import pyarrow as pa

    fields = []
    for col in columns:
        seen = [(f, t[col]) for f, t in types_by_file.items() if col in t]
        try:
            unified = pa.unify_schemas([pa.schema([(col, t)]) for _, t in seen],
                                       promote_options="permissive").field(col).type
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            if col in cfg.data.raw_schema.categorical or col in (cfg.data.raw_schema.scenario, cfg.data.split.column):
                unified = pa.string()  # ids that are numbers in one file and text in another: text
            else:
                (f1, t1), (f2, t2) = next(
                    (a, b) for i, a in enumerate(seen) for b in seen[i + 1:] if not _compatible(a[1], b[1]))
                raise SourceError(
                    f"column {col!r} is {t1} in {f1} but {t2} in {f2}; give it the same type in every file"
                ) from None
        if col == cfg.data.split.column:
            unified = pa.string()
        fields.append(pa.field(col, unified))
    return pa.schema(fields)


def _compatible(a: "pa.DataType", b: "pa.DataType") -> bool:
    import pyarrow as pa

    try:
        pa.unify_schemas([pa.schema([("x", a)]), pa.schema([("x", b)])], promote_options="permissive")
        return True
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False


def splits_from_names(files: list[Path]) -> dict[Path, str]:
    """file -> split when every file is named for one (train.csv, test.csv) and one is train."""
    if len(files) < 2:
        return {}
    top = Path(os.path.commonpath([str(f.parent) for f in files]))
    splits = {f: split_of(f, top) for f in files}
    if None in splits.values() or "train" not in splits.values():
        return {}
    return splits  # type: ignore[return-value]

