"""Drift and skew of a new batch against the training data of the current champion.

The reference is the ``stats`` the champion's fitted transform saved when it was fitted
(mtl/data/features/): decile histograms of the numeric features, the most frequent values of
the categorical ones, the vocabulary, and label rates per task and scenario. Three measures,
each with a warning and a failure level in params.yaml (``validation.drift``):

- **population stability index** per feature: sum over bins of (q - p) * ln(q / p), with p the
  champion's training share of a bin and q the batch's. Numeric bins are the training deciles
  plus one for missing values; categorical bins are the training's most frequent values, one
  for every other value and one for nulls, so an id column with millions of values is binned
  the same way as a column of three. Rules of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a
  different population.
- **label shift** per task, overall and per scenario: the relative change of the label rate
  (regression: of the mean). A change within sampling noise of the batch size (z < 4) is never
  flagged, so a small batch does not raise alarms on a rare label.
- **history length** per history column (data.schema.sequence): the PSI of the distribution of
  lengths (0 to features.sequence.max_length), at the psi levels: a history that suddenly comes
  out empty or short is a broken join upstream, and the model reads it without complaint.
- **new-category rate** per categorical feature: the share of rows whose value is outside the
  champion's vocabulary, beyond the share its own training data had (rare values it folded into
  the out-of-vocabulary slot). These rows all look the same to the model.

A **panel's daily rows** (data.panel) get the same PSI and new-category rate per daily and
static column, against the profile of the daily rows the champion's training saw (its
transform's ``stats["panel"]``), since the transform itself was fitted on framed examples.

Pure functions of a frame and a reference; reading the champion is the stage's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mtl.data.columns import condition_mask, list_lengths

if TYPE_CHECKING:
    from mtl.config import Config, DriftConfig, Levels, ValidationConfig

# A share of 0 in either distribution makes ln(q / p) infinite: shares are floored at this.
EPSILON = 1e-4
# A label shift is only judged when it is this many standard errors from the reference rate.
MIN_Z = 4.0


@dataclass(frozen=True)
class Measure:
    check: str  # psi | label_shift | new_category_rate
    column: str  # the feature, or the task (with "/scenario" for a scenario's rate)
    value: float
    level: str  # ok | warning | error
    detail: str


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins."""
    p = np.maximum(np.asarray(reference, dtype=np.float64), EPSILON)
    q = np.maximum(np.asarray(batch, dtype=np.float64), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _level(value: float, levels: "Levels") -> str:
    if value >= levels.fail:
        return "error"
    return "warning" if value >= levels.warn else "ok"


def numeric_shares(values: pd.Series, histogram: dict) -> tuple[np.ndarray, np.ndarray]:
    """(reference shares, batch shares) over the reference's decile bins plus a missing bin."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = int(np.isfinite(x).sum())
    # rows below each edge (NaN compares false): a few vectorised passes, cheaper than a search
    below = np.array([np.count_nonzero(x < e) for e in histogram["edges"]], dtype=np.float64)
    counts = np.diff(np.concatenate([[0.0], below, [finite]]))
    n = max(len(x), 1)
    batch = np.append(counts / n, (len(x) - finite) / n)
    return np.append(histogram["fractions"], histogram["missing"]), batch


def _value_counts(values: pd.Series, kind: str) -> pd.Series:
    """Non-null value counts, keyed the way the transform stores values (int64 or str)."""
    counts = values.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]
    if kind == "int":
        keys = pd.to_numeric(pd.Series(counts.index, dtype=object), errors="coerce").to_numpy()
        ok = np.isfinite(keys.astype(np.float64)) & (keys.astype(np.float64) % 1 == 0)
        counts = pd.Series(counts.to_numpy()[ok], index=keys[ok].astype(np.int64))
    else:
        counts.index = counts.index.astype(str)
    return counts.groupby(level=0).sum()


def categorical_shares(values: pd.Series, stats: dict, total_rows: int, kind: str,
                       counts: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reference shares, batch shares) over the reference's top values, the rest, and nulls."""
    top = [v for v, _ in stats["top"]]
    ref_top = np.array([c for _, c in stats["top"]], dtype=np.float64) / max(total_rows, 1)
    ref_null = stats["nulls"] / max(total_rows, 1)
    reference = np.concatenate([ref_top, [max(1.0 - ref_top.sum() - ref_null, 0.0), ref_null]])
    counts = _value_counts(values, kind) if counts is None else counts
    n = max(len(values), 1)
    batch_top = counts.reindex(top, fill_value=0).to_numpy(dtype=np.float64) / n
    batch_null = float(values.isna().sum()) / n
    batch = np.concatenate([batch_top, [max(1.0 - batch_top.sum() - batch_null, 0.0), batch_null]])
    return reference, batch


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def feature_drift(frame: pd.DataFrame, reference: dict, cfg: "Config") -> list[Measure]:
    """PSI of every feature and the new-category rate of every categorical one."""
    levels = cfg.validation.drift
    stats, vocabularies = reference["stats"], reference.get("categorical", {})
    champion = reference.get("name", "the champion")
    out: list[Measure] = []
    for col in cfg.data.raw_schema.features:
        rule = cfg.validation.columns.get(col)
        if col not in frame.columns or (rule is not None and not rule.drift):
            continue
        if col in stats.get("numeric", {}) and stats["numeric"][col].get("histogram", {}).get("edges"):
            p, q = numeric_shares(frame[col], stats["numeric"][col]["histogram"])
            out.append(_psi_measure(col, psi(p, q), levels.psi, champion, "deciles"))
        elif col in stats.get("categorical", {}) and "top" in stats["categorical"][col]:
            kind = vocabularies.get(col, {}).get("kind", "str")
            counts = _value_counts(frame[col], kind)
            p, q = categorical_shares(frame[col], stats["categorical"][col], stats["rows"], kind, counts)
            out.append(_psi_measure(col, psi(p, q), levels.psi, champion, "most frequent values"))
            if col in vocabularies:
                out.append(_new_categories(col, counts, vocabularies[col], stats["categorical"][col], cfg.validation.drift, champion))
    return out


def _psi_measure(col: str, value: float, levels: "Levels", champion: str, bins: str) -> Measure:
    level = _level(value, levels)
    if level == "ok":
        detail = f"'{col}': PSI {value:.3f} against {champion}'s training data (below {levels.warn})"
    else:
        what = "failure" if level == "error" else "warning"
        limit = levels.fail if level == "error" else levels.warn
        detail = (f"'{col}' drifted: PSI {value:.3f} over the {bins} of {champion}'s training data "
                  f"(the {what} level is {limit}, validation.drift.psi); check the upstream source of "
                  f"'{col}', or set validation.columns.{col}.drift: false if the change is expected")
    return Measure("psi", col, round(value, 6), level, detail)


def _new_categories(col: str, counts: pd.Series, vocabulary: dict, stats: dict, drift: "DriftConfig",
                    champion: str) -> Measure:
    levels = drift.new_category_rate
    non_null = float(counts.sum())
    known = counts.index.isin(vocabulary["values"])
    share = float(counts[~known].sum()) / non_null if non_null else 0.0
    baseline = max(1.0 - float(stats.get("coverage", 1.0)), 0.0)
    excess = max(share - baseline, 0.0)
    level = _level(excess, levels)
    if level == "ok":
        detail = (f"'{col}': {share:.1%} of rows have values outside {champion}'s vocabulary "
                  f"(its training data: {baseline:.1%})")
    else:
        unseen = counts[~known].sort_values(ascending=False).index[:3].tolist()
        detail = (f"'{col}': {share:.1%} of rows have values {champion} never saw in training (its own "
                  f"training data: {baseline:.1%}; {excess:.1%} more, the "
                  f"{'failure' if level == 'error' else 'warning'} level is "
                  f"{levels.fail if level == 'error' else levels.warn}, validation.drift.new_category_rate), "
                  f"e.g. {unseen}; the model maps them all to one unknown slot: retrain on data with them, "
                  f"or check the source of '{col}'")
    return Measure("new_category_rate", col, round(excess, 6), level, detail)


def label_shift(frame: pd.DataFrame, reference: dict, cfg: "Config") -> list[Measure]:
    """Relative change of each task's label rate (regression: mean), overall and per scenario."""
    drift = cfg.validation.drift
    labels = reference["stats"].get("labels", {})
    champion = reference.get("name", "the champion")
    scenario = cfg.data.raw_schema.scenario
    codes, names = pd.factorize(frame[scenario]) if scenario in frame.columns else (None, [])
    out: list[Measure] = []
    for task in cfg.raw_tasks:
        ref = labels.get(task.name)
        if not ref or task.label not in frame.columns:
            continue
        y = pd.to_numeric(frame[task.label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        valid = ((y == 0) | (y == 1)) if task.type == "binary" else np.isfinite(y)
        defined = condition_mask(frame, task) & valid
        w = np.where(defined, y, 0.0)
        groups = [("__all__", int(defined.sum()), float(w.sum()))]
        if codes is not None:  # per scenario: one weighted count over all rows (null scenario: slot 0)
            n = np.bincount(codes + 1, weights=defined, minlength=len(names) + 1)[1:]
            total = np.bincount(codes + 1, weights=w, minlength=len(names) + 1)[1:]
            groups += [(str(name), int(n[i]), float(total[i])) for i, name in enumerate(names) if n[i] >= drift.min_rows]
        for group, rows, total in groups:
            if rows == 0 or group not in ref or ref[group].get("mean") is None:
                continue
            out.append(_shift(task, group, rows, total / rows, ref[group], drift.label_shift, champion))
    return out


def _shift(task, group: str, n: int, r1: float, ref: dict, levels: "Levels", champion: str) -> Measure:
    r0 = float(ref["mean"])
    if task.type == "binary":
        sd = np.sqrt(max(r0 * (1 - r0), 0.0))
    else:
        sd = float(ref.get("std") or 0.0)
    rel = abs(r1 - r0) / abs(r0) if r0 != 0 else (0.0 if r1 == 0 else float("inf"))
    z = abs(r1 - r0) / (sd / np.sqrt(n)) if sd > 0 else (float("inf") if r1 != r0 else 0.0)
    level = _level(rel, levels) if z >= MIN_Z else "ok"
    column = task.name if group == "__all__" else f"{task.name}/{group}"
    where = "" if group == "__all__" else f" in scenario '{group}'"
    what = "rate" if task.type == "binary" else "mean"
    if level == "ok":
        detail = (f"task '{task.name}'{where}: label {what} {_fmt(r1)} vs {_fmt(r0)} in {champion}'s training "
                  f"data ({rel:.0%} change{'' if z >= MIN_Z else ', within sampling noise'})")
    else:
        limit = levels.fail if level == "error" else levels.warn
        detail = (f"task '{task.name}'{where}: label {what} {_fmt(r1)} on {n:,} rows vs {_fmt(r0)} in {champion}'s "
                  f"training data, a {rel:.0%} change (the {'failure' if level == 'error' else 'warning'} level is "
                  f"{limit:.0%}, validation.drift.label_shift); check how '{task.label}' is logged upstream")
    return Measure("label_shift", column, round(rel, 6) if np.isfinite(rel) else 1e9, level, detail)


def history_drift(frame: pd.DataFrame, reference: dict, validation: "ValidationConfig") -> list[Measure]:
    """PSI of the length distribution of every history column the champion was trained with."""
    levels = validation.drift
    champion = reference.get("name", "the champion")
    out = []
    for col, stats in reference["stats"].get("sequence", {}).items():
        rule = validation.columns.get(col)
        if col not in frame.columns or "length_shares" not in stats or (rule is not None and not rule.drift):
            continue
        p = np.asarray(stats["length_shares"])
        lengths = np.minimum(list_lengths(frame[col]), len(p) - 1)
        q = np.bincount(lengths, minlength=len(p)) / max(len(lengths), 1)
        out.append(_psi_measure(col, psi(p, q), levels.psi, champion, "history lengths"))
    return out


def compare(frame: pd.DataFrame, reference: dict, cfg: "Config") -> list[Measure]:
    """Every drift measure of ``frame`` against ``reference`` ({"name", "stats", "categorical"})."""
    if cfg.data.panel is not None:
        # A panel's batch is daily rows, never the framed examples the transform was fitted on:
        # it is compared with the profile of the daily rows the champion's training saw.
        panel = reference["stats"].get("panel") or {"rows": 0, "numeric": {}, "categorical": {}}
        reference = {**reference, "stats": panel}
    return feature_drift(frame, reference, cfg) + history_drift(frame, reference, cfg.validation) + label_shift(
        frame, reference, cfg)
