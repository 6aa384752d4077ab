"""The fitted feature transform: fit on the training split only (fit.py), apply anywhere
(encode.py). This module holds what it is and how it is saved and loaded.

``Fitter`` streams over the training rows chunk by chunk and learns, per column, what
``features`` in params.yaml asks for: categorical vocabularies (minimum frequency, maximum size,
index 0 for out-of-vocabulary values and nulls, optional hashed buckets for unseen ids) and
numeric transforms (impute -> clip -> log1p -> standardise or bucketise, with an optional
missing indicator). It also records what it saw (counts, means, quantiles, label rates per task
and scenario) so later runs can compare new data against it.

History columns (``data.schema.sequence``) become a (rows, columns, max_length) matrix of
indices into the vocabulary of the column each shares, newest element first, -1 for padding.
Text columns (``data.schema.text``) become one row index per column into a table of sentence
vectors: every distinct text is encoded once (mtl/data/features/text.py) and the vectors are saved beside
the transform (``transform.text.npy``, float16, its SHA-256 in the JSON).

The result is plain JSON with a checksum: no pickle, so a transform from anywhere loads safely.
``apply`` is the one function that turns raw rows into model inputs; training (via
``mtl.data.features.shards``) and the served model both call it, which is what makes them agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import PanelConfig, TaskConfig

FORMAT_VERSION = 2
OOV = 0
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# The reference distributions drift checks compare new data with (mtl/data/contracts/drift.py): the
# training deciles of each numeric column, the most frequent values of each categorical one.
DRIFT_BINS = 10
TOP_VALUES = 20


@dataclass
class Transform:
    categorical: dict[str, dict]  # column -> {"kind", "values", "hash_buckets", ...}
    numeric: dict[str, dict]  # column -> {"impute", "clip", "log", "scale", "mean", "std", "boundaries", ...}
    targets: dict[str, dict]  # regression task -> {"mean": float, "std": float}
    tasks: tuple[TaskConfig, ...]  # the tasks the transform was fitted for (name, label, type, condition)
    split: dict = field(default_factory=dict)  # how rows were split, for lineage
    stats: dict = field(default_factory=dict)  # what the fit saw, for drift checks and docs
    # history column -> {"shares": categorical column, "max_length": int}
    sequence: dict[str, dict] = field(default_factory=dict)
    # {"encoder": {...}, "columns": {column: {"values": [...], "offset": int}}, "vectors_sha256": str}
    text: dict = field(default_factory=dict)
    # A panel's lag window (data.panel): {"channels": [column, ...], "lookback": days}; the
    # columns <channel>_lag<k> are numeric inputs that the temporal encoder reads as series.
    window: dict = field(default_factory=dict)
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
    def panel(self) -> PanelConfig | None:
        """The daily panel the examples were framed from (data.panel), or None."""
        return PanelConfig(**self.window["panel"]) if "panel" in self.window else None

    @property
    def window_index(self) -> list[list[int]]:
        """Per window channel, the numeric inputs of its lags, oldest first; a channel with a lag
        that is not a scaled numeric input (bucketised) is left out."""
        if not self.window.get("channels"):
            return []
        at = {name: i for i, name in enumerate(self.num_inputs)}
        lags = range(self.window["lookback"], 0, -1)
        names = [[f"{c}_lag{k}" for k in lags] for c in self.window["channels"]]
        return [[at[n] for n in channel] for channel in names if all(n in at for n in channel)]

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
            "tasks": [t.saved() for t in self.tasks],
            "split": self.split,
            "stats": self.stats,
        }
        # Only when used: a transform without them hashes as it did before they existed.
        if self.sequence:
            out["sequence"] = self.sequence
        if self.text:
            out["text"] = self.text
        if self.window:
            out["window"] = self.window
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
        t = cls(*(payload[k] for k in ("categorical", "numeric", "targets")), _tasks(payload["tasks"]),
                payload["split"], payload["stats"],
                sequence=payload.get("sequence", {}), text=payload.get("text", {}), window=payload.get("window", {}))
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


def _tasks(saved: list[dict]) -> tuple[TaskConfig, ...]:
    """The tasks as saved in the JSON, typed again (the same model params.yaml's tasks are)."""
    return tuple(TaskConfig.model_validate(t) for t in saved)


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
    return Transform(categorical, numeric, body["targets"], _tasks(body["tasks"]), body["split"], {})


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
