"""Batch scoring: a parquet or CSV file (or a folder of them) in, one score per task and row out.

    mtl score --input rows.parquet --output scores.parquet      # the champion of gate.model_name
    mtl score --input day.csv --output scores.csv --model models:/mtl-ecommerce/3

The model is resolved once (an alias such as @champion is pinned to the version it points at
when scoring starts, so a promotion half-way through cannot mix two models in one output) and
loaded from the registry package: the transform and weights the served model uses. Rows are
read, scored and written `scoring.chunk_rows` at a time, so memory stays flat whatever the file
size; the next chunk is read while the current one is scored. The output is written under a
temporary name and renamed when complete: a failed run leaves no partial file and does not
replace an earlier output. A manifest (<output>.json) records the model version, the input and
the row count beside it.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from mtl.data.ingest.adapters.base import is_csv
from mtl.data.ingest.adapters.files import PARQUET_SUFFIXES
from mtl.data.columns import keep_lists
from mtl.progress import Progress
from mtl.scoring import Scorer, SchemaMismatch, check_columns

ALIAS_URI = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)")


class ScoringError(ValueError):
    """The input or output cannot be used (missing, unknown format, the same file)."""


@dataclass(frozen=True)
class ScoringResult:
    input: str
    output: str
    model_uri: str  # pinned: models:/<name>/<version> when scored from the registry
    model_version: str | None
    rows: int
    chunks: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def describe(self) -> str:
        return (f"scored {self.rows:,} rows of {self.input} with {self.model_uri} in {self.seconds:.1f} s "
                f"({self.rows_per_second:,.0f} rows/s) -> {self.output}")


# -- the model -------------------------------------------------------------------------------


def pin(model_uri: str) -> tuple[str, str | None]:
    """``models:/name@alias`` -> (``models:/name/<version>``, version); other URIs unchanged."""
    m = ALIAS_URI.fullmatch(model_uri)
    if m is None:
        version = model_uri.rsplit("/", 1)[-1] if model_uri.startswith("models:/") else None
        return model_uri, version
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mtl.promotion.registry import RegistryError

    try:
        version = MlflowClient().get_model_version_by_alias(m["name"], m["alias"]).version
    except MlflowException:
        raise RegistryError(
            f"model {m['name']!r} has no version under the alias {m['alias']!r} in this registry: run the "
            "pipeline until a model is promoted (`make run`), or pass --model with a model URI"
        ) from None
    return f"models:/{m['name']}/{version}", str(version)


def load_scorer(model_uri: str) -> Scorer:
    """The Scorer inside a packaged model (transform and weights as the registry stores them)."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    scorer = getattr(model.unwrap_python_model(), "scorer", None)
    if scorer is None:
        raise ScoringError(f"{model_uri} is not a model of this pipeline (no transform inside)")
    return scorer


# -- reading ---------------------------------------------------------------------------------


def _format(path: Path) -> str:
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        return "parquet"
    if is_csv(path):
        return "csv"
    raise ScoringError(f"{path}: unknown format (suffix {path.suffix!r}); use .parquet or .csv")


def input_files(path: Path) -> list[Path]:
    """The file, or the parquet/CSV files of a folder (sorted, one format)."""
    if path.is_file():
        _format(path)
        return [path]
    if not path.is_dir():
        raise ScoringError(f"input {path} does not exist")
    found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and (p.name.lower().endswith(PARQUET_SUFFIXES) or is_csv(p)))
    if not found:
        raise ScoringError(f"folder {path} holds no .parquet or .csv files")
    if len({_format(p) for p in found}) > 1:
        raise ScoringError(f"folder {path} mixes parquet and CSV files; keep one format per folder")
    return found


def _columns_of(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    if _format(path) == "parquet":
        return list(pq.read_schema(path).names)
    return list(pd.read_csv(path, nrows=0).columns)


def _chunks(files: list[Path], columns: list[str], scorer: Scorer, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    for path in files:
        if _format(path) == "parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
                # History columns stay Arrow lists (and whatever pandas metadata says of them).
                yield batch.to_pandas(types_mapper=keep_lists, ignore_metadata=True)
            continue
        # CSV has no types: text categories stay text ("007" is not 7), the rest is inferred per
        # chunk (the transform takes an id as a number or as text alike).
        text = {c: "string" for c, spec in scorer.transform.categorical.items() if spec["kind"] == "str"}
        yield from pd.read_csv(path, usecols=columns, dtype=text, chunksize=chunk_rows)


def _prefetch(chunks: Iterator[pd.DataFrame], depth: int = 2) -> Iterator[pd.DataFrame]:
    """Read ahead on a thread: parquet decoding and CSV parsing overlap scoring (both release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def reader() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                q.put(chunk)
            q.put(done)
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            q.put(err)

    thread = threading.Thread(target=reader, name="mtl-score-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


# -- writing ---------------------------------------------------------------------------------


class _Writer:
    """Parquet or CSV by the output's suffix, to a temporary file renamed on close(). Arrow writes
    both (pandas' to_csv takes several times longer)."""

    def __init__(self, path: Path):
        self.path = path
        self.format = _format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._sink = None  # a ParquetWriter, or the open CSV file
        self._schema = None
        self._rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.format == "csv":
            # Chunk by chunk, each with its own types: CSV input is typed per chunk (a kept id
            # column may read as numbers in one chunk and as text in the next) and CSV output
            # has no schema to hold them to.
            if self._sink is None:
                self._sink = open(self.tmp, "wb")
            pacsv.write_csv(table, self._sink, pacsv.WriteOptions(include_header=self._rows == 0))
        else:
            if self._sink is None:
                self._sink, self._schema = pq.ParquetWriter(self.tmp, table.schema), table.schema
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                changed = [f.name for f in table.schema if f.type != self._schema.field(f.name).type]
                raise ScoringError(
                    f"column(s) {changed} change type between chunks of the input ({self._schema} then "
                    f"{table.schema}); write parquet input with one type per column, or score to CSV"
                ) from None
            self._sink.write_table(table)
        self._rows += len(frame)

    def close(self, columns: list[str]) -> None:
        if self._sink is None:  # no rows: still a valid file with the columns
            self.write(pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns}))
        self._sink.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
        self.tmp.unlink(missing_ok=True)


# -- the run ---------------------------------------------------------------------------------


def score_file(scorer: Scorer, input_path: Path, output_path: Path, *, chunk_rows: int = 200_000,
               keep: tuple[str, ...] | list[str] = (), model_uri: str = "", model_version: str | None = None,
               ) -> ScoringResult:
    """Score every row of ``input_path`` into ``output_path``: the ``keep`` columns, then one
    column per task, row for row in input order."""
    input_path, output_path = Path(input_path), Path(output_path)
    files = input_files(input_path)
    if output_path.resolve() in {f.resolve() for f in files} or output_path.resolve() == input_path.resolve():
        raise ScoringError(f"output {output_path} is the input: choose another path (the input is never overwritten)")
    _format(output_path)
    keep = list(dict.fromkeys(keep))
    if scorer.is_raw_panel(_columns_of(files[0])):
        return _forecast_file(scorer, files, input_path, output_path, model_uri, model_version)
    clash = [c for c in keep if c in scorer.tasks]
    if clash:
        raise ScoringError(f"keep column(s) {clash} have the names of score columns; leave them out of keep")
    for f in files:  # every file, before anything is scored: a bad file late in a folder fails now
        present = _columns_of(f)
        check_columns(present, scorer.input_columns, where=f"input {f}")
        absent = [c for c in keep if c not in present]
        if absent:
            raise SchemaMismatch(f"input {f} lacks the column(s) {absent} asked to be kept beside the scores "
                                 f"(scoring.keep / --keep); it has {present}")
    columns = list(dict.fromkeys([*keep, *scorer.input_columns]))
    writer = _Writer(output_path)
    started = time.perf_counter()
    rows = chunks = 0
    try:
        with Progress("scoring", _row_count(files), "rows") as shown:
            for chunk in _prefetch(_chunks(files, columns, scorer, chunk_rows)):
                scores = scorer.predict(chunk)
                if keep:
                    scores = pd.concat([chunk[keep].reset_index(drop=True), scores], axis=1)
                writer.write(scores)
                rows += len(chunk)
                chunks += 1
                shown.update(len(chunk))
        writer.close([*keep, *scorer.tasks])
    except BaseException:
        writer.abort()
        raise
    result = ScoringResult(str(input_path), str(output_path), model_uri, model_version, rows, chunks,
                           time.perf_counter() - started)
    manifest = output_path.with_name(output_path.name + ".json")
    manifest.write_text(json.dumps(asdict(result) | {"rows_per_second": round(result.rows_per_second),
                                                     "tasks": scorer.tasks, "keep": keep}, indent=2) + "\n")
    return result


def _row_count(files: list[Path]) -> int | None:
    """The rows to score, from parquet footers; None when a file is CSV (counting it is a read)."""
    import pyarrow.parquet as pq

    if any(_format(f) != "parquet" for f in files):
        return None
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _forecast_file(scorer: Scorer, files: list[Path], input_path: Path, output_path: Path, model_uri: str,
                   model_version: str | None) -> ScoringResult:
    """A panel's raw recent history (read whole: a series' days must be framed together) into
    one forecast row per series (its ids, origin and one column per task)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    read = {"parquet": lambda f: pq.read_table(f).to_pandas(), "csv": lambda f: pacsv.read_csv(f).to_pandas()}
    history = pd.concat([read[_format(f)](f) for f in files], ignore_index=True)
    writer = _Writer(output_path)
    started = time.perf_counter()
    try:
        out = scorer.forecast(history)
        writer.write(out)
        writer.close(list(out.columns))
    except BaseException:
        writer.abort()
        raise
    result = ScoringResult(str(input_path), str(output_path), model_uri, model_version, len(out), 1,
                           time.perf_counter() - started)
    output_path.with_name(output_path.name + ".json").write_text(json.dumps(
        asdict(result) | {"tasks": scorer.tasks, "series": len(out), "history_rows": len(history)}, indent=2) + "\n")
    return result


def score(cfg, paths, input_path: str | Path, output_path: str | Path, model: str | None = None,
          chunk_rows: int | None = None, keep: list[str] | None = None) -> ScoringResult:
    """`mtl score`: resolve the model (scoring.model, else the champion of gate.model_name) in the
    project's registry and score the input. Relative paths are taken from the working directory."""
    from mtl import tracking

    tracking.configure(paths)
    uri, version = pin(model or cfg.scoring.model or f"models:/{cfg.gate.model_name}@champion")
    scorer = load_scorer(uri)
    return score_file(scorer, Path(input_path), Path(output_path),
                      chunk_rows=chunk_rows or cfg.scoring.chunk_rows,
                      keep=cfg.scoring.keep if keep is None else keep, model_uri=uri, model_version=version)
