"""Shared reader of public datasets shipped as CSV files with official train / val / test splits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from mtl.data.ingest.adapters.base import (
    Adapter,
    Reading,
    SourceError,
    csv_files,
    csv_header,
    iter_csv,
    short_list,
    split_of,
    wanted_columns,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mtl.config import Config


def common_parent(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files]))


class CsvLayout(Adapter):
    """A dataset whose every file has the same known columns and is named for its split.

    Subclasses declare the columns by role: ``ids`` are read as int64 (label-encoded
    categoricals), ``dense`` as float64, ``labels`` as int64. Declaring the types up front keeps
    every file and every block of a file in one schema. The rows get a split column
    (data.split.column) with train / validation / test taken from the file names.
    """

    ids: ClassVar[tuple[str, ...]] = ()
    dense: ClassVar[tuple[str, ...]] = ()
    labels: ClassVar[tuple[str, ...]] = ()
    columns_doc: ClassVar[str] = ""  # the expected columns, in words, for error messages
    required_splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def canonical(self, column: str) -> str:
        """The raw-log name of a column of the files (census renames to snake_case)."""
        return column

    def extra_columns(self, files: list[Path]) -> dict[Path, dict[str, str]]:
        """Constant columns per file (AliExpress: the country); none by default."""
        return {f: {} for f in files}

    def files(self, path: Path) -> list[Path]:
        found = csv_files(path)
        if not found:
            raise SourceError(f"{self.name}: found no CSV files at {path}. Expected {self.expects}.")
        top = common_parent(found)
        splits = {f: split_of(f, top) for f in found}
        unknown = [f.name for f, s in splits.items() if s is None]
        if unknown:
            raise SourceError(
                f"{self.name}: cannot tell which split {short_list(unknown)} belong(s) to: a file name needs "
                f"exactly one of the words train, val (or valid, validation) and test. Expected {self.expects}; "
                f"rename the files or move the others out of {path}."
            )
        missing = [s for s in self.required_splits if s not in splits.values()]
        if missing:
            raise SourceError(
                f"{self.name}: no {' or '.join(missing)} file at {path} (found {short_list(f.name for f in found)}). "
                f"Expected {self.expects}."
            )
        order = {"train": 0, "validation": 1, "test": 2}
        return sorted(found, key=lambda f: (order[splits[f]], f))  # rows in the raw log: train first

    def types(self) -> dict[str, "pa.DataType"]:
        import pyarrow as pa

        return {c: pa.int64() for c in self.ids} | {c: pa.float64() for c in self.dense} | {
            c: pa.int64() for c in self.labels}

    def read(self, files: list[Path], cfg: "Config") -> Reading:
        import pyarrow as pa

        types = self.types()
        wanted = wanted_columns(cfg.data)
        need = [c for c in wanted if c in types]
        split_col = cfg.data.split.column
        extras = self.extra_columns(files)
        extra_names = [c for c in wanted if any(c in e for e in extras.values())]
        top = common_parent(files)
        plans = []
        for f in files:
            header = csv_header(f, self.name)
            by_canonical = {self.canonical(h): h for h in header}
            missing = [c for c in need if c not in by_canonical]
            if missing:
                raise SourceError(
                    f"{self.name}: {f} lacks the column(s) {short_list(missing)}. Expected {self.expects}, "
                    f"with columns {self.columns_doc}; found {short_list(header)}. "
                    f"Check that data.source names the dataset these files hold."
                )
            columns = [by_canonical[c] for c in need]
            rename = {by_canonical[c]: c for c in need}
            constants = {split_col: split_of(f, top)} | {c: extras[f][c] for c in extra_names}
            plans.append((f, header, columns, rename, constants))
        schema = pa.schema([(c, types[c]) for c in need] + [(split_col, pa.string())]
                           + [(c, pa.string()) for c in extra_names])
        return Reading(schema, self._batches(plans, types, schema))

    def _batches(self, plans, types, schema) -> Iterator["pa.RecordBatch"]:
        advice = (f"The {self.name} adapter reads categorical ids as integers and dense features as numbers; "
                  f"check that the file is complete and comes from the expected preprocessing.")
        for f, header, columns, rename, constants in plans:
            file_types = {col: types[rename[col]] for col in columns}
            yield from iter_csv(f, self.name, header, columns, file_types, schema, constants, rename, advice)
