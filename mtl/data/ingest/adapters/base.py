"""What every dataset adapter shares: the interface and the CSV/split helpers.

An adapter turns the files of one layout into the canonical raw log:

- ``files(path)`` lists what it will read (after checking the layout of names); the list is what
  the ingest fingerprints, so ``validate`` can tell when the user's files changed;
- ``read(files, cfg)`` checks the headers up front and returns the arrow schema of the rows it
  will produce plus a lazy iterator of record batches in that schema, holding only the columns
  ``cfg`` asks for (schema, truth and split columns), so memory stays bounded for any file size.

Nothing here imports pyarrow at module level: ``mtl.config`` imports the registry while it
validates params.yaml, and Airflow imports ``mtl`` on every DAG parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa

    from mtl.config import Config, DataConfig

# Bytes of CSV parsed at once: large enough for few, big record batches, small enough to bound memory.
CSV_BLOCK_BYTES = 16 << 20
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
SPLIT_TOKENS = {
    "train": "train", "training": "train",
    "val": "validation", "valid": "validation", "validation": "validation",
    "test": "test", "testing": "test",
}


class SourceError(ValueError):
    """The configured data source cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class Reading:
    """What an adapter will produce: the schema, then the rows (read lazily, batch by batch)."""

    schema: "pa.Schema"
    batches: Iterator["pa.RecordBatch"]


class Adapter:
    name: ClassVar[str]  # its data.source name, as in mtl/names.py ADAPTERS
    format: ClassVar[str] = "csv"  # recorded in the raw manifest
    # The layout, in words, for error messages: what to download and where to put it.
    expects: ClassVar[str] = ""

    def files(self, path: Path) -> list[Path]:
        """The files this adapter reads under ``path`` (sorted); SourceError if the layout is wrong."""
        raise NotImplementedError

    def read(self, files: list[Path], cfg: "Config") -> Reading:
        """Schema and batches of the canonical rows of ``files``; header problems raise here."""
        raise NotImplementedError


# --------------------------------------------------------------------------- helpers


def wanted_columns(data: "DataConfig") -> list[str]:
    """Columns the raw log keeps: the schema's, the truth columns and the split column."""
    schema = data.raw_schema
    cols = [*schema.required_columns(), *schema.truth.values(), data.split.column,
            *([schema.sequence_time] if schema.sequence_time else []),
            *(data.panel.truth.values() if data.panel else ())]
    return list(dict.fromkeys(cols))


def is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def stem(path: Path) -> str:
    """The file name without its suffixes (``ali_ccp_train.csv.gz`` -> ``ali_ccp_train``)."""
    name = path.name
    for suffix in (".gz", ".bz2", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", name.lower()) if t]


def split_of(path: Path, top: Path | None = None) -> str | None:
    """train / validation / test from the file's name, else from its folders below ``top``.

    Names are cut into tokens (``ali_ccp_val_sample`` -> ali, ccp, val, sample), so "contest"
    is not a test file. None when no token, or tokens of different splits, name a split.
    """
    names = [stem(path)]
    if top is not None:
        names += [p.name for p in path.parents if p != top and top in p.parents]
    for name in names:
        found = {SPLIT_TOKENS[t] for t in tokens(name) if t in SPLIT_TOKENS}
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None


def csv_files(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else every CSV below it, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and is_csv(p))


def check_not_empty(path: Path, label: str) -> None:
    """An empty file (an export that wrote nothing) is named as such, not as a parse error."""
    if path.stat().st_size == 0:
        raise SourceError(f"{label}: {path} is empty (0 bytes): the export that wrote it produced nothing; "
                          f"re-export it or remove it from the folder")


# Separators a CSV written by a spreadsheet or another locale often uses instead of commas.
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def check_delimiter(header: list[str], path: Path, label: str) -> None:
    """A header that parsed as one column holding another separator: the file is not comma-separated."""
    if len(header) != 1:
        return
    for sep, name in OTHER_DELIMITERS.items():
        if header[0].count(sep) >= 1:
            raise SourceError(
                f"{label}: {path} is not comma-separated: its header is one column, {header[0][:80]!r}, "
                f"split by {name}s ({sep!r}). Save it with commas as the "
                f"delimiter (e.g. pandas: pd.read_csv(path, sep={sep!r}).to_csv(new_path, index=False)), or as parquet"
            )


def csv_header(path: Path, label: str) -> list[str]:
    """Column names of a CSV file (compressed ones too); SourceError if it cannot be parsed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    check_not_empty(path, label)
    try:
        header = list(pacsv.open_csv(str(path)).schema.names)
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"{label}: could not read the header of {path}: {err}") from None
    check_delimiter(header, path, label)
    return header


def short_list(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _csv_column_hint(err: Exception, header: list[str]) -> str:
    """pyarrow says "In CSV column #5"; name the column instead."""
    match = re.search(r"CSV column #(\d+)", str(err))
    if match and int(match.group(1)) < len(header):
        return f" (column {header[int(match.group(1))]!r})"
    return ""


def conform(batch: "pa.RecordBatch", schema: "pa.Schema", constants: dict[str, Any],
            rename: dict[str, str] | None = None) -> "pa.RecordBatch":
    """``batch`` with exactly the fields of ``schema``: renamed, cast, constants and nulls added."""
    import pyarrow as pa

    present = {(rename or {}).get(n, n): i for i, n in enumerate(batch.schema.names)}
    n = batch.num_rows
    arrays = []
    for field in schema:
        if field.name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[field.name], field.type), n))
        elif field.name in present:
            arr = batch.column(present[field.name])
            arrays.append(arr if arr.type == field.type else arr.cast(field.type))
        else:  # a column this file lacks (the files adapter unions columns across files)
            arrays.append(pa.nulls(n, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def iter_csv(path: Path, label: str, header: list[str], columns: list[str], types: dict[str, "pa.DataType"],
             schema: "pa.Schema", constants: dict[str, Any], rename: dict[str, str] | None = None,
             advice: str = "") -> Iterator["pa.RecordBatch"]:
    """Stream ``columns`` of one CSV file as batches of ``schema``, block by block.

    ``types`` fixes the arrow type of each column up front: pyarrow otherwise infers types from
    the first block only, and two files (or two blocks) could disagree.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=columns, include_missing_columns=True)
    try:
        for batch in pacsv.open_csv(str(path), read_options=read, convert_options=convert):
            yield conform(batch, schema, constants, rename)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as err:
        hint = _csv_column_hint(err, header)
        raise SourceError(f"{label}: could not read {path}{hint}: {err}. {advice}".rstrip()) from None
