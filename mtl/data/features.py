"""The fitted feature transform: fit on the training split only, apply anywhere.

``Fitter`` streams over the training rows chunk by chunk and learns, per column, what
``features`` in params.yaml asks for: categorical vocabularies (minimum frequency, maximum size,
index 0 for out-of-vocabulary values and nulls, optional hashed buckets for unseen ids) and
numeric transforms (impute -> clip -> log1p -> standardise or bucketise, with an optional
missing indicator). It also records what it saw (counts, means, quantiles, label rates per task
and scenario) so later runs can compare new data against it.

History columns (``data.schema.sequence``) become a (rows, columns, max_length) matrix of
indices into the vocabulary of the column each shares, newest element first, -1 for padding.
Text columns (``data.schema.text``) become one row index per column into a table of sentence
vectors: every distinct text is encoded once (mtl/data/text.py) and the vectors are saved beside
the transform (``transform.text.npy``, float16, its SHA-256 in the JSON).

The result is plain JSON with a checksum: no pickle, so a transform from anywhere loads safely.
``apply`` is the one function that turns raw rows into model inputs; training (via
``mtl.data.shards``) and the served model both call it, which is what makes them agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import Config, TaskConfig

FORMAT_VERSION = 2
OOV = 0
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# The reference distributions drift checks compare new data with (mtl/data/drift.py): the
# training deciles of each numeric column, the most frequent values of each categorical one.
DRIFT_BINS = 10
# Texts a loaded transform keeps encoded beyond its saved table (serving's unseen titles).
MAX_ENCODED_TEXTS = 100_000
TOP_VALUES = 20


@dataclass
class Transform:
    categorical: dict[str, dict]  # column -> {"kind", "values", "hash_buckets", ...}
    numeric: dict[str, dict]  # column -> {"impute", "clip", "log", "scale", "mean", "std", "boundaries", ...}
    targets: dict[str, dict]  # regression task -> {"mean": float, "std": float}
    tasks: list[dict]  # the task specs the transform was fitted for (name, label, type, condition)
    split: dict = field(default_factory=dict)  # how rows were split, for lineage
    stats: dict = field(default_factory=dict)  # what the fit saw, for drift checks and docs
    # history column -> {"shares": categorical column, "max_length": int}
    sequence: dict[str, dict] = field(default_factory=dict)
    # {"encoder": {...}, "columns": {column: {"values": [...], "offset": int}}, "vectors_sha256": str}
    text: dict = field(default_factory=dict)
    _lookups: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # The sentence vectors (row 0: the zero vector of a null text), then any texts encoded since.
    _vectors: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _vectors_file: Path | None = field(default=None, init=False, repr=False, compare=False)
    _extra: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    # -- what the model sees ------------------------------------------------------------------
    @property
    def bucketized(self) -> list[str]:
        return [c for c, s in self.numeric.items() if s["scale"] == "bucketize"]

    @property
    def cat_inputs(self) -> list[str]:
        """Names of the model's categorical inputs: vocabularies, then bucketised numerics."""
        return [*self.categorical, *(f"{c}__bucket" for c in self.bucketized)]

    @property
    def num_inputs(self) -> list[str]:
        """Names of the model's numeric inputs: scaled numerics, then missing indicators."""
        scaled = [c for c, s in self.numeric.items() if s["scale"] != "bucketize"]
        return [*scaled, *(f"{c}__missing" for c, s in self.numeric.items() if s["missing_indicator"])]

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical input, OOV slot (and hash buckets) included."""
        vocab = [len(s["values"]) + 1 + s["hash_buckets"] for s in self.categorical.values()]
        return vocab + [len(self.numeric[c]["boundaries"]) + 2 for c in self.bucketized]

    @property
    def n_numeric(self) -> int:
        return len(self.num_inputs)

    @property
    def seq_shares(self) -> list[int]:
        """Per history column, the categorical input whose embedding its elements share."""
        return [list(self.categorical).index(s["shares"]) for s in self.sequence.values()]

    @property
    def seq_length(self) -> int:
        return max((s["max_length"] for s in self.sequence.values()), default=0)

    @property
    def text_dim(self) -> int:
        return int(self.text["encoder"]["dim"]) if self.text else 0

    # -- text vectors -------------------------------------------------------------------------
    def set_vectors(self, vectors: np.ndarray) -> None:
        """The sentence vectors of every text of ``text.columns`` (row 0 the null text)."""
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        self.text["vectors_sha256"] = hashlib.sha256(self._vectors.tobytes()).hexdigest()

    def _base_vectors(self) -> np.ndarray:
        if self._vectors is None:
            self._vectors = _read_vectors(self._vectors_file, self.text["vectors_sha256"])
        return self._vectors

    def text_rows(self) -> int:
        return len(self._base_vectors()) + len(self._extra) if self.text else 1

    def text_table(self) -> np.ndarray:
        """(rows, dim) float32: the saved vectors, then those of texts encoded since loading
        ((1, 0) without text columns). Built once per set of encoded texts: a model server asks
        for it on every request."""
        if not self.text:
            return np.zeros((1, 0), dtype=np.float32)
        if self._table is None:  # encode_text and apply reset it when the encoded texts change
            base = self._base_vectors().astype(np.float32)
            extra = [v for _, v in self._extra.values()]
            self._table = np.concatenate([base, np.stack(extra)]) if extra else base
        return self._table

    def text_lookup(self, column: str) -> pd.Index:
        key = ("text", column)
        if key not in self._lookups:
            self._lookups[key] = pd.Index(np.asarray(self.text["columns"][column]["values"], dtype=object))
        return self._lookups[key]

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {
            "format_version": FORMAT_VERSION,
            "categorical": self.categorical,
            "numeric": self.numeric,
            "targets": self.targets,
            "tasks": self.tasks,
            "split": self.split,
            "stats": self.stats,
        }
        # Only when used: a transform without them hashes as it did before they existed.
        if self.sequence:
            out["sequence"] = self.sequence
        if self.text:
            out["text"] = self.text
        return out

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.text:
            vectors = text_vectors_file(path)
            np.save(vectors.with_suffix(".tmp.npy"), self._base_vectors())
            vectors.with_suffix(".tmp.npy").replace(vectors)
        payload = self.to_dict() | {"sha256": self.fingerprint()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Transform":
        payload = json.loads(Path(path).read_text())
        if payload.get("format_version") == 1:
            return _from_v1(payload, path)
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: transform format {payload.get('format_version')} is not {FORMAT_VERSION}; "
                f"rerun `mtl preprocess` (or `dvc repro`)"
            )
        t = cls(*(payload[k] for k in ("categorical", "numeric", "targets", "tasks", "split", "stats")),
                sequence=payload.get("sequence", {}), text=payload.get("text", {}))
        if payload.get("sha256") != t.fingerprint():
            raise ValueError(f"{path}: checksum mismatch, the transform file is corrupted; rerun `mtl preprocess`")
        t._vectors_file = text_vectors_file(Path(path))  # read when first needed, checked then
        return t

    def lookup(self, column: str) -> pd.Index:
        """The vocabulary of ``column`` as a hash index, built once per loaded transform."""
        if column not in self._lookups:
            spec = self.categorical[column]
            dtype = np.int64 if spec["kind"] == "int" else object
            self._lookups[column] = pd.Index(np.asarray(spec["values"], dtype=dtype))
        return self._lookups[column]


def text_vectors_file(transform_file: Path) -> Path:
    """Where a transform's sentence vectors live: beside it (transform.json -> transform.text.npy)."""
    return transform_file.with_name(transform_file.stem + ".text.npy")


def _read_vectors(path: Path | None, sha256: str) -> np.ndarray:
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{path}: the transform's text vectors are missing; they are written beside "
                                "transform.json by `mtl preprocess` and must travel with it")
    vectors = np.load(path, allow_pickle=False)
    if hashlib.sha256(np.ascontiguousarray(vectors).tobytes()).hexdigest() != sha256:
        raise ValueError(f"{path}: checksum mismatch, the text vectors are corrupted; rerun `mtl preprocess`")
    return vectors


def _from_v1(payload: dict, path: Path) -> Transform:
    """Read a version-1 transform (vocabularies and standardisation only), so champions packaged
    before per-column transforms existed can still be loaded and re-scored by the gate."""
    body = {k: payload[k] for k in ("format_version", "categorical", "numeric", "targets", "tasks", "split")}
    if payload.get("sha256") != hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest():
        raise ValueError(f"{path}: checksum mismatch, the transform file is corrupted; rerun `mtl preprocess`")
    categorical = {c: {"kind": s["kind"], "values": s["values"], "hash_buckets": 0} for c, s in body["categorical"].items()}
    numeric = {c: {"impute": s["mean"], "missing_indicator": False, "clip": None, "log": False,
                   "scale": "standardize", "mean": s["mean"], "std": s["std"], "boundaries": []}
               for c, s in body["numeric"].items()}
    return Transform(categorical, numeric, body["targets"], body["tasks"], body["split"], {})


@dataclass(frozen=True)
class Arrays:
    """Model-ready arrays for a set of rows."""

    cat: np.ndarray  # (n, n_cat_inputs) int32 embedding indices
    num: np.ndarray  # (n, n_num_inputs) float32
    labels: np.ndarray  # (n, n_tasks) float32 (binary 0/1, regression standardised); 0 where masked
    mask: np.ndarray  # (n, n_tasks) bool: the task is defined on this row
    # (n, n_history_columns, max_length) int32: vocabulary indices, newest first, -1 = padding
    seq: np.ndarray | None = None
    text: np.ndarray | None = None  # (n, n_text_columns) int32: rows of the transform's text table

    FIELDS = ("cat", "num", "labels", "mask", "seq", "text")

    def __post_init__(self) -> None:
        n = len(self.cat)
        if self.seq is None:
            object.__setattr__(self, "seq", np.zeros((n, 0, 0), np.int32))
        if self.text is None:
            object.__setattr__(self, "text", np.zeros((n, 0), np.int32))

    def __len__(self) -> int:
        return len(self.cat)

    def take(self, rows: np.ndarray) -> "Arrays":
        return Arrays(*(getattr(self, k)[rows] for k in self.FIELDS))

    @classmethod
    def concat(cls, parts: list["Arrays"]) -> "Arrays":
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in cls.FIELDS))


# ---------------------------------------------------------------------------------------------
# apply: raw rows -> model inputs


def condition_mask(df: pd.DataFrame, task: dict) -> np.ndarray:
    cond = task.get("condition")
    if cond is None:
        return np.ones(len(df), dtype=bool)
    return (df[cond["column"]] == cond["equals"]).to_numpy(dtype=bool, na_value=False)


def _stable_hash(values: np.ndarray) -> np.ndarray:
    # pandas' hash_array is SipHash with a fixed key: the same value hashes the same in every
    # process and on every machine, unlike Python's salted hash().
    return pd.util.hash_array(values, categorize=False)


def _as_kind(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Values converted to the vocabulary's kind, and a mask of rows that have one."""
    if kind == "int":
        if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
            return series.to_numpy(dtype=np.int64), np.ones(len(series), dtype=bool)
        # Ids arriving as floats or strings ("123") at serving time still find their slot.
        x = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(x) & (np.floor(x) == x)
        return np.where(ok, x, 0).astype(np.int64), ok
    ok = series.notna().to_numpy()
    return series.astype(object).where(ok, "").astype(str).to_numpy(dtype=object), ok


def encode_categorical(series: pd.Series, t: Transform, column: str) -> np.ndarray:
    """Embedding index of each value: 1.. for the vocabulary, then hash buckets; 0 for OOV/null."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Dictionary-encoded input (how preprocessing reads strings): encode the few distinct
        # values once, then gather by code.
        cats = encode_categorical(pd.Series(series.cat.categories), t, column)
        codes = series.cat.codes.to_numpy()
        return np.where(codes >= 0, cats[np.maximum(codes, 0)], OOV).astype(np.int32)
    spec = t.categorical[column]
    values, ok = _as_kind(series, spec["kind"])
    idx = t.lookup(column).get_indexer(values) + 1  # -1 (not found) becomes OOV
    idx[~ok] = OOV
    if spec["hash_buckets"]:
        unseen = (idx == OOV) & ok
        if unseen.any():
            idx[unseen] = 1 + len(spec["values"]) + (_stable_hash(values[unseen]) % np.uint64(spec["hash_buckets"])).astype(np.int64)
    return idx.astype(np.int32)


def keep_lists(arrow_type):
    """``types_mapper`` for Arrow's to_pandas: list columns (histories) stay Arrow lists. As numpy
    arrays, one Python object per row, a million of them cost seconds to make and to read back."""
    import pyarrow as pa

    return pd.ArrowDtype(arrow_type) if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) else None


def list_column(series: pd.Series):
    """A column of lists as a pyarrow ListArray, whatever form it arrives in: Arrow lists (parquet
    read by pandas), Python lists or numpy arrays (a served DataFrame), JSON text ("[3, 17]", a
    CSV file); nulls are empty histories."""
    import pyarrow as pa

    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_list(series.dtype.pyarrow_dtype):
        arr = pa.array(series)  # the Arrow array pandas holds (one array, whatever its chunks)
    else:
        values = series.tolist()
        if any(isinstance(v, str) for v in values):
            values = [json.loads(v) if isinstance(v, str) else v for v in values]
        try:
            arr = pa.array(values, from_pandas=True)  # numpy arrays convert as they are
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            # Mixed element types (numpy and pandas timestamps, ints and floats): let pandas
            # find the common type of all the elements, then cut them back into lists.
            null = [v is None or (isinstance(v, float) and np.isnan(v)) for v in values]
            lengths = [0 if n else len(v) for v, n in zip(values, null)]
            child = pa.array(pd.Series([x for v, n in zip(values, null) if not n for x in v]), from_pandas=True)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            arr = pa.ListArray.from_arrays(offsets, child, mask=pa.array(null))
        if pa.types.is_null(arr.type):
            arr = pa.array(values, type=pa.list_(pa.int64()), from_pandas=True)
    if isinstance(arr, pa.LargeListArray):
        arr = arr.cast(pa.list_(arr.type.value_type))
    if not pa.types.is_list(arr.type):
        raise ValueError(f"column {series.name!r} holds {arr.type}, not lists: a history column holds one list "
                         "per row (oldest element first)")
    return arr


def list_lengths(series: pd.Series) -> np.ndarray:
    """Elements per row of a list column (0 for a null history)."""
    arr = list_column(series)
    n = np.diff(arr.offsets.to_numpy()).astype(np.int64)
    n[np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return n


def encode_sequence(series: pd.Series, t: Transform, column: str) -> np.ndarray:
    """(rows, max_length) int32 indices into the shared column's vocabulary, newest element
    first; -1 where a history is shorter (padding), OOV for an element the vocabulary lacks."""
    spec = t.sequence[column]
    length = spec["max_length"]
    arr = list_column(series)
    n = len(arr)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    starts, ends = offsets[:-1], offsets[1:]
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    keep = np.where(valid, np.minimum(ends - starts, length), 0)
    flat = arr.values.to_pandas()
    codes = encode_categorical(flat, t, spec["shares"]) if len(flat) else np.zeros(0, np.int32)
    out = np.full((n, length), -1, dtype=np.int32)
    rows = np.repeat(np.arange(n), keep)
    pos = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)  # 0 = the newest
    out[rows, pos] = codes[np.repeat(ends, keep) - 1 - pos]
    return out


def encode_text(series: pd.Series, t: Transform, column: str, encode_unseen: bool = True) -> np.ndarray:
    """Row of each value in the transform's text table (0 for null). A text never seen is encoded
    now with the transform's encoder and appended to the table in memory."""
    spec = t.text["columns"][column]
    ok = series.notna().to_numpy()
    values = series.astype(object).where(ok, "").astype(str).to_numpy(dtype=object)
    idx = t.text_lookup(column).get_indexer(values)
    out = np.where(idx >= 0, idx + spec["offset"], 0).astype(np.int64)
    unseen = ok & (idx < 0)
    if unseen.any():
        new = [v for v in pd.unique(values[unseen]) if (column, v) not in t._extra]
        if new and not encode_unseen:
            raise KeyError(f"{len(new)} text(s) of {column!r} are not in the transform's table")
        if new:
            from mtl.data import text as text_encoders

            vectors = text_encoders.encode(new, t.text["encoder"]["name"])
            start = t.text_rows()
            for i, (v, vec) in enumerate(zip(new, vectors)):
                t._extra[(column, v)] = (start + i, vec.astype(np.float32))
            t._table = None
        out[unseen] = [t._extra[(column, v)][0] for v in values[unseen]]
    out[~ok] = 0
    return out.astype(np.int32)


def numeric_values(series: pd.Series, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(impute -> clip -> log1p)-ed values and the missing mask, before scaling."""
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    missing = ~np.isfinite(x)
    x = np.where(missing, spec["impute"], x)
    return _shape(x, spec), missing


def _shape(x: np.ndarray, spec: dict) -> np.ndarray:
    if spec["clip"] is not None:
        lo, hi = spec["clip"]
        x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if spec["log"]:
        x = np.log1p(np.maximum(x, 0.0))
    return x


def apply(df: pd.DataFrame, t: Transform, with_labels: bool = True) -> Arrays:
    """Raw rows to model inputs. The single code path for training, evaluation and serving."""
    n = len(df)
    cat_cols: list[np.ndarray] = [encode_categorical(df[c], t, c) for c in t.categorical]
    num_cols: list[np.ndarray] = []
    indicators: list[np.ndarray] = []
    for col, spec in t.numeric.items():
        x, missing = numeric_values(df[col], spec)
        if spec["scale"] == "bucketize":
            cat_cols.append((np.searchsorted(spec["boundaries"], x, side="right") + 1).astype(np.int32))
        elif spec["scale"] == "standardize":
            num_cols.append((x - spec["mean"]) / spec["std"])
        else:
            num_cols.append(x)
        if spec["missing_indicator"]:
            indicators.append(missing.astype(np.float64))
    cat = np.stack(cat_cols, axis=1) if cat_cols else np.zeros((n, 0), np.int32)
    num_all = num_cols + indicators
    num = np.stack(num_all, axis=1).astype(np.float32) if num_all else np.zeros((n, 0), np.float32)
    seq = (np.stack([encode_sequence(df[c], t, c) for c in t.sequence], axis=1) if t.sequence
           else np.zeros((n, 0, 0), np.int32))
    text_cols = t.text.get("columns", {})
    if len(t._extra) > MAX_ENCODED_TEXTS:
        # A long-running model server sees endless new titles: forget those encoded for earlier
        # calls (1.5 KB each) rather than grow without bound. Done before any column is encoded,
        # so the rows this call assigns stay valid until its prediction.
        t._extra.clear()
        t._table = None
    text = (np.stack([encode_text(df[c], t, c) for c in text_cols], axis=1) if text_cols
            else np.zeros((n, 0), np.int32))
    labels = np.zeros((n, len(t.tasks)), dtype=np.float32)
    mask = np.zeros((n, len(t.tasks)), dtype=bool)
    if with_labels:
        for j, task in enumerate(t.tasks):
            y = pd.to_numeric(df[task["label"]], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            m = condition_mask(df, task) & ~np.isnan(y)
            if task["name"] in t.targets:
                scale = t.targets[task["name"]]
                y = (y - scale["mean"]) / scale["std"]
            labels[:, j] = np.where(m, y, 0.0)
            mask[:, j] = m
    return Arrays(np.ascontiguousarray(cat), np.ascontiguousarray(num), labels, mask, seq, text)


# ---------------------------------------------------------------------------------------------
# fit: streamed statistics of the training split


class _Moments:
    """Count, sum and sum of squares, merged across chunks in float64."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        self.n += len(x)
        self.s += float(x.sum())
        self.ss += float(np.square(x).sum())

    @property
    def mean(self) -> float:
        return self.s / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        if self.n < 2:
            return 1.0
        var = max(self.ss / self.n - self.mean**2, 0.0) * self.n / (self.n - 1)
        return float(np.sqrt(var)) or 1.0


class Fitter:
    """Accumulates training-split statistics chunk by chunk; ``finish`` returns the Transform.

    Memory is bounded by the vocabularies plus ``features.sample_rows`` sampled rows, never by
    the number of rows seen. The quantile sample keeps the rows with the smallest seeded hash of
    their global row number (a bottom-k sample), so it is the same whatever the chunk size.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg
        schema = cfg.data.schema
        self.tasks = [_task_dict(t) for t in cfg.tasks]
        self.cat_spec = {c: cfg.features.categorical_spec(c) for c in schema.categorical}
        self.num_spec = {c: cfg.features.numeric_spec(c) for c in schema.numeric}
        self.counts: dict[str, pd.Series] = {c: pd.Series(dtype="int64") for c in schema.categorical}
        self.kinds: dict[str, str] = {}
        self.nulls = {c: 0 for c in schema.categorical}
        self.raw = {c: _Moments() for c in schema.numeric}
        self.shaped = {c: _Moments() for c in schema.numeric}  # after clip/log: for standardising
        self.missing = {c: 0 for c in schema.numeric}
        self.sample_keys = np.zeros(0, dtype=np.float64)
        self.sample = pd.DataFrame({c: pd.Series(dtype="float64") for c in schema.numeric})
        self.targets = {t["name"]: _Moments() for t in self.tasks if t["type"] == "regression"}
        # (task, scenario) -> [labelled rows, sum, sum of squares]
        self.label_sums: dict[tuple[str, str], list[float]] = {}
        self.rows = 0
        # history column -> [rows, total length, empty rows, rows at max_length or longer,
        # rows per length 0..max_length (longer ones counted at max_length)]
        self.seq_lengths = {c: [0, 0, 0, 0, np.zeros(cfg.features.sequence.max_length + 1, np.int64)]
                            for c in schema.sequence}
        self.texts: dict[str, set] = {c: set() for c in schema.text}

    def observe_text(self, chunk: pd.DataFrame) -> None:
        """Collect the distinct texts of rows of *every* split: a text's vector is a fixed function
        of the text alone (a frozen pretrained encoder, no labels), so encoding a test title too
        leaks nothing, and spares the training loop an encoder."""
        for col in self.texts:
            s = chunk[col]
            values = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else s.dropna().unique()
            self.texts[col].update(str(v) for v in values)

    def update(self, chunk: pd.DataFrame, row_ids: np.ndarray) -> None:
        from mtl.data.splits import uniform

        self.rows += len(chunk)
        for col in self.counts:
            s = chunk[col]
            if col not in self.kinds:
                self.kinds[col] = "int" if pd.api.types.is_integer_dtype(s.dtype) and not isinstance(
                    s.dtype, pd.CategoricalDtype) else "str"
            self.nulls[col] += int(s.isna().sum())
            vc = s.value_counts(dropna=True, sort=False)
            vc = vc[vc > 0]
            if self.kinds[col] == "str":
                vc.index = vc.index.astype(str)
            self.counts[col] = self.counts[col].add(vc, fill_value=0).astype("int64")
        for col in self.raw:
            x = pd.to_numeric(chunk[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            ok = np.isfinite(x)
            self.missing[col] += int((~ok).sum())
            self.raw[col].add(x[ok])
            spec = self.num_spec[col]
            self.shaped[col].add(_shape(x[ok], {"clip": spec.clip, "log": spec.log}))
        if self.raw:
            keys = uniform(row_ids, self.cfg.data.split.seed + 1)
            keep = self.cfg.features.sample_rows
            part = chunk[list(self.raw)].apply(pd.to_numeric, errors="coerce").astype("float64")
            self.sample_keys = np.concatenate([self.sample_keys, keys])
            self.sample = pd.concat([self.sample, part.reset_index(drop=True)], ignore_index=True)
            if len(self.sample_keys) > keep:
                order = np.argpartition(self.sample_keys, keep)[:keep]
                self.sample_keys, self.sample = self.sample_keys[order], self.sample.iloc[order].reset_index(drop=True)
        length = self.cfg.features.sequence.max_length
        for col, acc in self.seq_lengths.items():
            n = list_lengths(chunk[col])
            acc[0] += len(n)
            acc[1] += int(n.sum())
            acc[2] += int((n == 0).sum())
            acc[3] += int((n >= length).sum())
            acc[4] += np.bincount(np.minimum(n, length), minlength=length + 1)
        scenario = self.cfg.data.schema.scenario
        if scenario is not None:
            codes, names = pd.factorize(chunk[scenario])  # cheap on dictionary-encoded columns
            names = [str(v) for v in names]
        for t in self.tasks:
            y = pd.to_numeric(chunk[t["label"]], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            m = condition_mask(chunk, t) & ~np.isnan(y)
            if t["name"] in self.targets:
                self.targets[t["name"]].add(y[m])
            self._label_rate(t["name"], "__all__", int(m.sum()), float(y[m].sum()), float(np.square(y[m]).sum()))
            if scenario is not None:
                c = codes[m]
                seen = c >= 0
                n = np.bincount(c[seen], minlength=len(names))
                total = np.bincount(c[seen], weights=y[m][seen], minlength=len(names))
                squares = np.bincount(c[seen], weights=np.square(y[m][seen]), minlength=len(names))
                for name, k, s, ss in zip(names, n, total, squares):
                    if k:
                        self._label_rate(t["name"], name, int(k), float(s), float(ss))

    def _label_rate(self, task: str, scenario: str, rows: int, total: float, squares: float) -> None:
        acc = self.label_sums.setdefault((task, scenario), [0, 0.0, 0.0])
        acc[0] += rows
        acc[1] += total
        acc[2] += squares

    def finish(self, split_info: dict) -> Transform:
        categorical, cat_stats = {}, {}
        for col, spec in self.cat_spec.items():
            counts = self.counts[col]
            kind = self.kinds.get(col, "str")
            values = counts.index.to_numpy()
            if kind == "int":
                values = values.astype(np.int64)
            # Most frequent first, ties by value: deterministic, and max_size keeps the head.
            order = np.lexsort((values, -counts.to_numpy()))
            values, freq = values[order], counts.to_numpy()[order]
            keep = freq >= spec.min_frequency
            if spec.max_size is not None:
                keep &= np.arange(len(values)) < spec.max_size
            vocab = values[keep].tolist()
            categorical[col] = {
                "kind": kind, "values": vocab, "hash_buckets": spec.hash_buckets,
                "min_frequency": spec.min_frequency, "max_size": spec.max_size,
            }
            non_null = int(freq.sum())
            cat_stats[col] = {
                "distinct": int(len(values)), "vocabulary": len(vocab), "nulls": self.nulls[col],
                "coverage": round(float(freq[keep].sum()) / non_null, 6) if non_null else 0.0,
                "top": [[v, int(f)] for v, f in zip(values[:TOP_VALUES].tolist(), freq[:TOP_VALUES])],
            }
        numeric, num_stats = {}, {}
        for col, spec in self.num_spec.items():
            sample = self.sample[col].to_numpy()
            observed = sample[np.isfinite(sample)]
            raw = self.raw[col]
            impute = {"mean": raw.mean, "median": float(np.median(observed)) if len(observed) else 0.0,
                      "zero": 0.0}.get(spec.impute, spec.impute) if isinstance(spec.impute, str) else float(spec.impute)
            entry = {
                "impute": float(impute), "missing_indicator": spec.missing_indicator,
                "clip": list(spec.clip) if spec.clip is not None else None, "log": spec.log, "scale": spec.scale,
            }
            shaped = _shape(observed, entry)
            entry |= {"mean": 0.0, "std": 1.0, "boundaries": []}
            if spec.scale == "standardize":
                # Moments of observed values only: an imputed value then lands where it says.
                entry |= {"mean": self.shaped[col].mean, "std": self.shaped[col].std}
            elif spec.scale == "bucketize" and len(shaped):
                qs = np.quantile(shaped, np.arange(1, spec.buckets) / spec.buckets)
                entry["boundaries"] = np.unique(qs).tolist()
            numeric[col] = entry
            num_stats[col] = {
                "count": raw.n, "missing": self.missing[col], "mean": raw.mean, "std": raw.std,
                "min": float(observed.min()) if len(observed) else None,
                "max": float(observed.max()) if len(observed) else None,
                "quantiles": dict(zip(map(str, QUANTILES), np.quantile(observed, QUANTILES).tolist()))
                if len(observed) else {},
                "histogram": _histogram(sample),
            }
        targets = {name: {"mean": m.mean, "std": m.std} for name, m in self.targets.items()}
        labels: dict[str, dict] = {}
        for (task, scenario), (n, s, ss) in sorted(self.label_sums.items()):
            mean = s / n if n else None
            std = float(np.sqrt(max(ss / n - mean**2, 0.0))) if n else None
            labels.setdefault(task, {})[scenario] = {"rows": int(n), "mean": mean, "std": std}
        stats = {"rows": self.rows, "categorical": cat_stats, "numeric": num_stats, "labels": labels}
        schema, fc = self.cfg.data.schema, self.cfg.features
        sequence = {c: {"shares": shares, "max_length": fc.sequence.max_length} for c, shares in schema.sequence.items()}
        if sequence:
            # The distribution of lengths is the drift reference of a history column.
            stats["sequence"] = {c: {"mean_length": round(total / rows, 4) if rows else 0.0,
                                     "empty": round(empty / rows, 6) if rows else 0.0,
                                     "truncated": round(full / rows, 6) if rows else 0.0,
                                     "length_shares": (counts / max(rows, 1)).round(6).tolist()}
                                 for c, (rows, total, empty, full, counts) in self.seq_lengths.items()}
        t = Transform(categorical, numeric, targets, self.tasks, split_info, stats, sequence=sequence)
        if self.texts:
            from mtl.data import text as text_encoders

            columns, offset, ordered = {}, 1, []
            for col, values in self.texts.items():
                vocab = sorted(values)
                columns[col] = {"values": vocab, "offset": offset}
                offset += len(vocab)
                ordered += vocab
            enc = text_encoders.describe(fc.text.encoder)
            vectors = text_encoders.encode(ordered, fc.text.encoder, fc.text.batch_size)
            t.text = {"encoder": enc, "columns": columns}
            t.set_vectors(np.concatenate([np.zeros((1, enc["dim"]), np.float32), vectors]))
            stats["text"] = {c: {"distinct": len(s["values"])} for c, s in columns.items()}
        return t


def _histogram(sample: np.ndarray) -> dict:
    """Decile bins of the sampled training values and the share of the sample in each, plus the
    share missing: the reference a new batch's numeric distribution is compared with.

    Edges are the distinct deciles, so a column of few values (a position, a count) gets one bin
    per value instead of empty bins; values equal to an edge fall in the bin above it.
    """
    finite = np.isfinite(sample)
    observed = sample[finite]
    if not len(observed):
        return {"edges": [], "fractions": [], "missing": 1.0}
    edges = np.unique(np.quantile(observed, np.arange(1, DRIFT_BINS) / DRIFT_BINS))
    counts = np.bincount(np.searchsorted(edges, observed, side="right"), minlength=len(edges) + 1)
    return {"edges": edges.tolist(), "fractions": (counts / len(sample)).tolist(),
            "missing": float((~finite).mean())}


def _task_dict(t: TaskConfig) -> dict:
    return t.model_dump(mode="json")


def fit(train: pd.DataFrame, cfg: Config, split_info: dict | None = None) -> Transform:
    """Fit on an in-memory frame of training rows (tests, small data)."""
    fitter = Fitter(cfg)
    fitter.update(train, np.arange(len(train)))
    fitter.observe_text(train)
    return fitter.finish(split_info or {})
