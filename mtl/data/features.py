"""The fitted feature transform: fit on the training split only, apply anywhere.

``fit`` learns categorical vocabularies (index 0 is reserved for values never seen in training,
and for nulls), numeric means and standard deviations (missing numerics are imputed with the
training mean), and the scale of regression targets. The result is plain JSON: no pickle, so a
transform file from anywhere can be loaded safely. ``apply`` is the one function that turns raw
rows into model inputs, used both by training and by the served model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import Config, TaskConfig

FORMAT_VERSION = 1
OOV = 0


@dataclass(frozen=True)
class Transform:
    categorical: dict[str, dict]  # column -> {"kind": "int"|"str", "values": [...]}
    numeric: dict[str, dict]  # column -> {"mean": float, "std": float}
    targets: dict[str, dict]  # regression task -> {"mean": float, "std": float}
    tasks: list[dict]  # the task specs the transform was fitted for (name, label, type, condition)
    split: dict = field(default_factory=dict)  # how rows were split, for lineage

    @property
    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column, OOV slot included."""
        return [len(v["values"]) + 1 for v in self.categorical.values()]

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "categorical": self.categorical,
            "numeric": self.numeric,
            "targets": self.targets,
            "tasks": self.tasks,
            "split": self.split,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = self.to_dict() | {"sha256": self.fingerprint()}
        path.write_text(json.dumps(payload))

    @classmethod
    def load(cls, path: Path) -> "Transform":
        payload = json.loads(Path(path).read_text())
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: transform format {payload.get('format_version')} is not {FORMAT_VERSION}")
        t = cls(payload["categorical"], payload["numeric"], payload["targets"], payload["tasks"], payload["split"])
        if payload.get("sha256") != t.fingerprint():
            raise ValueError(f"{path}: checksum mismatch, the transform file is corrupted; rerun `mtl preprocess`")
        return t


@dataclass(frozen=True)
class Arrays:
    """Model-ready arrays for a set of rows."""

    cat: np.ndarray  # (n, n_categorical) int64 local vocabulary indices
    num: np.ndarray  # (n, n_numeric) float32, standardised
    labels: np.ndarray  # (n, n_tasks) float32 (binary 0/1, regression standardised); 0 where masked
    mask: np.ndarray  # (n, n_tasks) bool: the task is defined on this row

    def __len__(self) -> int:
        return len(self.cat)


def _task_dict(t: TaskConfig) -> dict:
    return t.model_dump(mode="json")


def condition_mask(df: pd.DataFrame, task: dict) -> np.ndarray:
    cond = task.get("condition")
    if cond is None:
        return np.ones(len(df), dtype=bool)
    return (df[cond["column"]] == cond["equals"]).to_numpy(dtype=bool, na_value=False)


def fit(train: pd.DataFrame, cfg: Config, split_info: dict | None = None) -> Transform:
    schema = cfg.data.schema
    categorical = {}
    for col in schema.categorical:
        values = train[col].dropna()
        if pd.api.types.is_integer_dtype(values):
            categorical[col] = {"kind": "int", "values": np.sort(pd.unique(values)).tolist()}
        else:
            categorical[col] = {"kind": "str", "values": sorted(pd.unique(values.astype(str)))}
    numeric = {}
    for col in schema.numeric:
        x = pd.to_numeric(train[col], errors="coerce").astype("float64")
        mean = float(x.mean()) if x.notna().any() else 0.0
        std = float(x.std()) if x.notna().sum() > 1 else 1.0
        numeric[col] = {"mean": mean, "std": std if std > 0 else 1.0}
    tasks = [_task_dict(t) for t in cfg.tasks]
    targets = {}
    for t in tasks:
        if t["type"] != "regression":
            continue
        y = pd.to_numeric(train[t["label"]], errors="coerce")[condition_mask(train, t)].dropna()
        std = float(y.std()) if len(y) > 1 else 1.0
        targets[t["name"]] = {"mean": float(y.mean()) if len(y) else 0.0, "std": std if std > 0 else 1.0}
    return Transform(categorical, numeric, targets, tasks, split_info or {})


def encode_categorical(series: pd.Series, spec: dict) -> np.ndarray:
    """Vocabulary index of each value; unseen values and nulls map to OOV (0)."""
    if spec["kind"] == "int":
        # Compare as float64: ids arriving as floats or strings ("123") still find their slot.
        index = pd.Index(np.asarray(spec["values"], dtype=np.float64))
        codes = index.get_indexer(pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan))
    else:
        index = pd.Index(spec["values"], dtype=object)
        codes = index.get_indexer(series.astype(object).where(series.isna(), series.astype(str)))
    return (codes + 1).astype(np.int64)  # -1 (not found) becomes OOV


def apply(df: pd.DataFrame, t: Transform, with_labels: bool = True) -> Arrays:
    """Raw rows to model inputs. The single code path for training, evaluation and serving."""
    n = len(df)
    cat = np.zeros((n, len(t.categorical)), dtype=np.int64)
    for j, (col, spec) in enumerate(t.categorical.items()):
        cat[:, j] = encode_categorical(df[col], spec)
    num = np.zeros((n, len(t.numeric)), dtype=np.float32)
    for j, (col, spec) in enumerate(t.numeric.items()):
        x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        x = np.where(np.isnan(x), spec["mean"], x)
        num[:, j] = (x - spec["mean"]) / spec["std"]
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
    return Arrays(cat, num, labels, mask)


def split_rows(df: pd.DataFrame, cfg: Config) -> tuple[dict[str, np.ndarray], dict]:
    """Row indices of train/validation/test and a record of how they were chosen.

    With a time column the split is by time (validation and test are the latest rows, so the
    model is judged on the future it will face); otherwise a seeded random split.
    """
    split = cfg.data.split
    n = len(df)
    time_col = cfg.data.schema.time
    if time_col is not None:
        ts = pd.to_datetime(df[time_col])
        train_end = ts.quantile(1.0 - split.validation - split.test)
        val_end = ts.quantile(1.0 - split.test)
        t = ts.to_numpy()
        idx = {
            "train": np.flatnonzero(t < train_end.to_datetime64()),
            "validation": np.flatnonzero((t >= train_end.to_datetime64()) & (t < val_end.to_datetime64())),
            "test": np.flatnonzero(t >= val_end.to_datetime64()),
        }
        info = {"method": "time", "column": time_col, "train_end": str(train_end), "validation_end": str(val_end)}
    else:
        perm = np.random.default_rng(split.seed).permutation(n)
        n_test, n_val = int(round(n * split.test)), int(round(n * split.validation))
        idx = {
            "test": np.sort(perm[:n_test]),
            "validation": np.sort(perm[n_test : n_test + n_val]),
            "train": np.sort(perm[n_test + n_val :]),
        }
        info = {"method": "random", "seed": split.seed}
    info["rows"] = {k: int(len(v)) for k, v in idx.items()}
    for name, rows in idx.items():
        if len(rows) == 0:
            raise ValueError(
                f"the {name} split is empty ({n} rows in total); provide more rows or change data.split"
            )
    return idx, info


def save_arrays(arrays: Arrays, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("cat", "num", "labels", "mask"):
        np.save(directory / f"{name}.npy", getattr(arrays, name))


def load_arrays(directory: Path, mmap: bool = True) -> Arrays:
    mode = "r" if mmap else None
    return Arrays(*(np.load(directory / f"{name}.npy", mmap_mode=mode) for name in ("cat", "num", "labels", "mask")))
