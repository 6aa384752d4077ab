"""What a check says, in words: the note of what it expects (Data Docs, and the line of a
passing check) and, when it fails, one sentence naming what is wrong, where, and how to fix it.
One small function per kind of check, looked up by kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def note(kind: str, column: str | None, info: dict) -> str:
    """What a check expects, in words (shown in Data Docs and on success)."""
    notes = {
        "rows": lambda: f"the log has at least {info.get('min_rows', 1):,} row(s)",
        "exists": lambda: f"column '{column}' exists (declared in {info.get('role')})",
        "numeric_type": lambda: f"'{column}' is a numeric (int or float) column",
        "datetime_type": lambda: f"time column '{column}' is a datetime column",
        "binary_type": lambda: f"binary label '{column}' is an integer, boolean or float column",
        "regression_type": lambda: f"regression label '{column}' is a numeric column",
        "not_all_null": lambda: f"feature '{column}' is not null on every row",
        "not_null": lambda: f"'{column}' is never null",
        "label_not_null": lambda: f"label '{column}' is never null",
        "binary_domain": lambda: f"binary label '{column}' is 0 or 1",
        "conditional_not_null": lambda: f"'{column}' is set wherever {info.get('condition')}",
        "funnel": lambda: f"'{info.get('label')}' is 1 only where '{info.get('implies')}' is 1 (funnel rule)",
        "null_fraction": lambda: f"'{column}' is null on at most {info.get('limit', 0):.1%} of rows",
        "range": lambda: f"'{column}' is within [{bound(info.get('min'), '-inf')}, {bound(info.get('max'), 'inf')}]",
        "cardinality": lambda: f"'{column}' has between {bound(info.get('min'), '-inf')} and {bound(info.get('max'), 'inf')} distinct values",
        "duplicate_keys": lambda: f"no two rows share the key ({column})",
        "duplicate_rows": lambda: "no row appears twice",
        "future": lambda: f"time column '{column}' is not later than {info.get('limit')} UTC",
        "too_old": lambda: f"time column '{column}' is not earlier than {info.get('limit')} UTC",
        "user": lambda: f"{info.get('type')} on {column or 'the table'} ({info.get('source')})",
        "list_type": lambda: f"history column '{column}' holds a list on every row",
        "aligned": lambda: f"history columns {info.get('columns')} have as many elements on every row",
        "history_before": lambda: f"every element of '{column}' is earlier than its row's '{info.get('time')}'",
        "panel_days_unique": lambda: f"one row per series and day ({column})",
        "panel_gaps": lambda: f"every series has every day from its first to its last ({column})",
        "panel_negative": lambda: f"'{column}' is never negative",
        "panel_event": lambda: f"daily event '{column}' is 0 or 1",
        "panel_capacity": lambda: f"'{info.get('sales')}' is never above '{info.get('limit')}'",
    }
    return notes[kind]()


def bound(value: Any, unset: str = "any") -> str:
    return unset if value is None else f"{value:g}" if isinstance(value, float) else str(value)




@dataclass(frozen=True)
class Failure:
    """A failed check as its message needs it."""

    kind: str
    column: str | None
    info: dict
    n: int | None  # rows that broke it, where the check counts rows
    observed: str | None  # the observed value GX reports (a dtype, a count, a timestamp)

    @property
    def rows(self) -> str:
        return "?" if self.n is None else f"{self.n:,}"

    @property
    def task(self) -> str | None:
        return self.info.get("task")

    @property
    def found(self) -> str:
        # A type check on a pandas dtype reports the dtype; on an object column it checks each value.
        return f"dtype {self.observed}" if self.observed is not None else f"{self.rows} values of another type"


def _rows(f: Failure) -> str:
    if f.observed in (None, "0"):
        return "the log has no rows: check data.source (or the size of data.synthetic) and re-run the generate stage"
    return (f"the log has {int(float(f.observed)):,} rows, fewer than validation.min_rows ({f.info['min_rows']:,}): a batch this "
            f"small is usually a broken or partial export; check the source, or lower validation.min_rows")


def _exists(f: Failure) -> str:
    return (f"missing column '{f.column}': it is declared in {f.info['role']}; add it to the data or remove it "
            f"from {f.info['role']} and from any task that uses it")


def _numeric_type(f: Failure) -> str:
    return (f"'{f.column}' has {f.found} but is declared numeric: convert it to int or float, or move it to "
            f"data.schema.categorical")


def _regression_type(f: Failure) -> str:
    return f"regression label '{f.column}' has {f.found}: convert it to int or float"


def _binary_type(f: Failure) -> str:
    return f"binary label '{f.column}' has {f.found}: encode it as 0/1 integers"


def _datetime_type(f: Failure) -> str:
    return (f"time column '{f.column}' has {f.found}: store it as a datetime (parse it, e.g. with "
            f"pandas.to_datetime, before writing the log) or unset data.schema.time to split randomly")


def _not_all_null(f: Failure) -> str:
    return f"'{f.column}': null on all {f.rows} rows: fill it or remove it from {f.info['role']}"


def _not_null(f: Failure) -> str:
    return (f"'{f.column}': {f.rows} rows are null: the {f.info['role']} column must be set on every row; "
            f"fill or drop them")


def _label_not_null(f: Failure) -> str:
    return f"'{f.column}': {f.rows} rows have no label (null): fill them or drop those rows"


def _binary_domain(f: Failure) -> str:
    return f"'{f.column}': {f.rows} rows have a value other than 0 or 1: recode the label to 0/1"


def _conditional_not_null(f: Failure) -> str:
    return (f"'{f.column}': {f.rows} rows are null where {f.info['condition']}: task '{f.task}' needs a value on every "
            f"such row; fill them, drop those rows or change the task's condition")


def _null_fraction(f: Failure) -> str:
    return (f"'{f.column}': {f.rows} rows are null, more than validation.columns.{f.column}.max_null_fraction "
            f"({f.info['limit']:.1%}) allows; fill them or raise the limit")


def _range(f: Failure) -> str:
    return (f"'{f.column}': {f.rows} rows are outside [{bound(f.info['min'], '-inf')}, {bound(f.info['max'], 'inf')}] "
            f"(validation.columns.{f.column}); fix or drop them, or widen the range if they are valid")


def _cardinality(f: Failure) -> str:
    return (f"'{f.column}' has {f.observed} distinct values, outside [{bound(f.info['min'], '-inf')}, {bound(f.info['max'], 'inf')}] "
            f"(validation.columns.{f.column}.cardinality): check that the column holds what data.schema says")


def _duplicates(f: Failure) -> str:
    what = f"the same key ({f.column}, validation.keys)" if f.kind == "duplicate_keys" else "an identical row"
    return (f"{f.rows} rows share {what} with another row: impressions were logged or exported twice; "
            f"drop the duplicates" + (" (or correct validation.keys)" if f.kind == "duplicate_keys" else ""))


def _future(f: Failure) -> str:
    return (f"time column '{f.column}' reaches {f.observed}, later than {f.info['limit']} UTC (now + "
            f"validation.max_future_minutes): timestamps in the future mean a clock or timezone bug "
            f"upstream; fix the timestamps (store them in UTC)")


def _too_old(f: Failure) -> str:
    return (f"time column '{f.column}' goes back to {f.observed}, before {f.info['limit']} UTC "
            f"(validation.max_age_days): drop the old rows or raise validation.max_age_days")


def _list_type(f: Failure) -> str:
    return (f"history column '{f.column}' ({f.info['role']}): {f.rows} values are not lists; store one list per row, "
            f"oldest element first (parquet list column, or JSON text such as [3, 17] in a CSV)")


def _aligned(f: Failure) -> str:
    return (f"history columns {f.info['columns']}: {f.rows} rows hold lists of different lengths; element i of each "
            f"must describe the same event, so they must have as many elements")


def _history_before(f: Failure) -> str:
    return (f"'{f.column}': on {f.rows} rows a history element is at or after the row's '{f.info['time']}': a history "
            f"must hold only what happened before the impression (its own click is a label leak); rebuild the "
            f"histories from events strictly earlier than each row")


def _user(f: Failure) -> str:
    got = f"{f.rows} unexpected rows" if f.n is not None else f"observed {f.observed}"
    return (f"{f.info['source']}: {f.info['type']} on {f.column or 'the table'} failed ({got}); fix the data or the "
            f"expectation in validation.expectations")


def _funnel(f: Failure) -> str:
    label, implies = f.info["label"], f.info["implies"]
    return (f"{label}: {f.rows} rows with {label}=1 but {implies}!=1: the funnel requires {implies} before "
            f"{label}; fix the labels or remove `implies: {implies}` from task '{f.task}'")


def _panel_days_unique(f: Failure) -> str:
    return (f"{f.rows} rows repeat a series and day ({f.column}; e.g. {f.observed}): data.panel wants one row per "
            f"series and day; aggregate the duplicates (sum the units) or fix data.panel.series")


def _panel_gaps(f: Failure) -> str:
    return (f"{f.rows} rows belong to series with a missing day ({f.column}; e.g. {f.observed}): every lag after a "
            f"gap would be shifted; add the missing days (0 units where nothing sold) or drop those series")


def _panel_negative(f: Failure) -> str:
    return (f"'{f.column}': {f.rows} days have negative units: returns or corrections netted into sales; record them "
            f"separately and keep the units sold at 0 or more")


def _panel_event(f: Failure) -> str:
    return f"'{f.column}': {f.rows} days are neither 0 nor 1 (data.panel.events): recode the flag to 0/1"


def _panel_capacity(f: Failure) -> str:
    return (f"'{f.info['sales']}': on {f.rows} days it is above '{f.info['limit']}' (data.panel.capacity): more was "
            f"sold than was available; check that the stock column is the stock at the start of the day, after "
            f"deliveries")


FAILURES: dict[str, Callable[[Failure], str]] = {
    "rows": _rows,
    "exists": _exists,
    "numeric_type": _numeric_type,
    "regression_type": _regression_type,
    "binary_type": _binary_type,
    "datetime_type": _datetime_type,
    "not_all_null": _not_all_null,
    "not_null": _not_null,
    "label_not_null": _label_not_null,
    "binary_domain": _binary_domain,
    "conditional_not_null": _conditional_not_null,
    "null_fraction": _null_fraction,
    "range": _range,
    "cardinality": _cardinality,
    "duplicate_keys": _duplicates,
    "duplicate_rows": _duplicates,
    "future": _future,
    "too_old": _too_old,
    "list_type": _list_type,
    "aligned": _aligned,
    "history_before": _history_before,
    "user": _user,
    "funnel": _funnel,
    "panel_days_unique": _panel_days_unique,
    "panel_gaps": _panel_gaps,
    "panel_negative": _panel_negative,
    "panel_event": _panel_event,
    "panel_capacity": _panel_capacity,
}

# Kinds whose sentence names an example row (GX's first unexpected row) in place of an observed value.
EXAMPLE_KINDS = ("panel_days_unique", "panel_gaps")


def failure_detail(kind: str, column: str | None, info: dict, n: int | None, observed: str | None) -> str:
    """One sentence for a failed check: what is wrong, where, and how to fix it."""
    if kind not in FAILURES:
        raise AssertionError(f"no message for check kind {kind!r}")
    return FAILURES[kind](Failure(kind, column, info, n, observed))
