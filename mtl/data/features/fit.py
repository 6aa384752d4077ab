"""Learning the Transform from the training split, streamed chunk by chunk (``Fitter``, ``fit``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config, SchemaConfig, TaskConfig
from mtl.data.columns import condition_mask, list_lengths
from mtl.data.features.encode import shape_numeric
from mtl.data.features.transform import DRIFT_BINS, QUANTILES, TOP_VALUES, Transform

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
        self.tasks = tuple(cfg.tasks)
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
        self.targets = {t.name: _Moments() for t in self.tasks if t.type == "regression"}
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
        from mtl.data.features.splits import uniform

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
            self.shaped[col].add(shape_numeric(x[ok], {"clip": spec.clip, "log": spec.log}))
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
            y = pd.to_numeric(chunk[t.label], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            m = condition_mask(chunk, t) & ~np.isnan(y)
            if t.name in self.targets:
                self.targets[t.name].add(y[m])
            self._label_rate(t.name, "__all__", int(m.sum()), float(y[m].sum()), float(np.square(y[m]).sum()))
            if scenario is not None:
                c = codes[m]
                seen = c >= 0
                n = np.bincount(c[seen], minlength=len(names))
                total = np.bincount(c[seen], weights=y[m][seen], minlength=len(names))
                squares = np.bincount(c[seen], weights=np.square(y[m][seen]), minlength=len(names))
                for name, k, s, ss in zip(names, n, total, squares):
                    if k:
                        self._label_rate(t.name, name, int(k), float(s), float(ss))

    def _label_rate(self, task: str, scenario: str, rows: int, total: float, squares: float) -> None:
        acc = self.label_sums.setdefault((task, scenario), [0, 0.0, 0.0])
        acc[0] += rows
        acc[1] += total
        acc[2] += squares

    def finish(self, split_info: dict) -> Transform:
        categorical, cat_stats = self._vocabularies()
        numeric, num_stats = self._numeric()
        # A log-link task's label is only scaled (by its mean), never shifted: it stays a
        # non-negative count for the Poisson or Tweedie loss.
        log_link = {t.name for t in self.tasks if t.log_link}
        targets = {name: {"mean": 0.0, "std": m.mean or 1.0} if name in log_link else {"mean": m.mean, "std": m.std}
                   for name, m in self.targets.items()}
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
        panel = self.cfg.data.panel
        # the panel's framing travels with the transform: a served model frames raw recent history
        window = ({"channels": list(panel.history), "lookback": panel.lookback, "panel": panel.model_dump(mode="json")}
                  if panel else {})
        t = Transform(categorical, numeric, targets, self.tasks, split_info, stats, sequence=sequence, window=window)
        if self.texts:
            self._encode_texts(t)
        return t

    def _vocabularies(self) -> tuple[dict, dict]:
        """Each categorical column's vocabulary (its spec) and what was seen (its statistics)."""
        categorical, stats = {}, {}
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
            stats[col] = {
                "distinct": int(len(values)), "vocabulary": len(vocab), "nulls": self.nulls[col],
                "coverage": round(float(freq[keep].sum()) / non_null, 6) if non_null else 0.0,
                "top": [[v, int(f)] for v, f in zip(values[:TOP_VALUES].tolist(), freq[:TOP_VALUES])],
            }
        return categorical, stats

    def _numeric(self) -> tuple[dict, dict]:
        """Each numeric column's transform (impute, clip, log, scale) and its statistics."""
        numeric, stats = {}, {}
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
            shaped = shape_numeric(observed, entry)
            entry |= {"mean": 0.0, "std": 1.0, "boundaries": []}
            if spec.scale == "standardize":
                # Moments of observed values only: an imputed value then lands where it says.
                entry |= {"mean": self.shaped[col].mean, "std": self.shaped[col].std}
            elif spec.scale == "bucketize" and len(shaped):
                qs = np.quantile(shaped, np.arange(1, spec.buckets) / spec.buckets)
                entry["boundaries"] = np.unique(qs).tolist()
            numeric[col] = entry
            stats[col] = {
                "count": raw.n, "missing": self.missing[col], "mean": raw.mean, "std": raw.std,
                "min": float(observed.min()) if len(observed) else None,
                "max": float(observed.max()) if len(observed) else None,
                "quantiles": dict(zip(map(str, QUANTILES), np.quantile(observed, QUANTILES).tolist()))
                if len(observed) else {},
                "histogram": _histogram(sample),
            }
        return numeric, stats

    def _encode_texts(self, t: Transform) -> None:
        """Every distinct text of the training split, encoded once into the transform's table."""
        from mtl.data.features import text as text_encoders

        fc = self.cfg.features
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
        t.stats["text"] = {c: {"distinct": len(s["values"])} for c, s in columns.items()}


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


def raw_profile(frame: pd.DataFrame, schema: SchemaConfig) -> dict:
    """The drift reference of raw rows that are not themselves the examples (a panel's daily rows,
    framed into examples later): decile histograms of the numeric columns and the most frequent
    values of the categorical ones, laid out as the transform's own statistics, so that the
    drift checks read either."""
    numeric = {c: {"histogram": _histogram(pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64, na_value=np.nan))}
               for c in schema.numeric if c in frame.columns}
    categorical = {}
    for c in (c for c in schema.categorical if c in frame.columns):
        integer = pd.api.types.is_integer_dtype(frame[c])
        counts = frame[c].value_counts(dropna=True)
        counts.index = counts.index.astype(np.int64) if integer else counts.index.astype(str)
        # most frequent first, ties by value: the same profile from the same rows
        counts = counts.groupby(level=0).sum().sort_index().sort_values(ascending=False, kind="stable")
        categorical[c] = {"kind": "int" if integer else "str", "nulls": int(frame[c].isna().sum()),
                          "top": [[v, int(f)] for v, f in counts.head(TOP_VALUES).items()]}
    return {"rows": len(frame), "numeric": numeric, "categorical": categorical}


def fit(train: pd.DataFrame, cfg: Config, split_info: dict | None = None) -> Transform:
    """Fit on an in-memory frame of training rows (tests, small data)."""
    fitter = Fitter(cfg)
    fitter.update(train, np.arange(len(train)))
    fitter.observe_text(train)
    return fitter.finish(split_info or {})
