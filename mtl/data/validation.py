"""Validation of the raw impression log: the data contract, enforced before anything is fitted.

Three parts, one report (:class:`ValidationReport`, written as the validate stage's DVC metric):

1. A Great Expectations suite, not written by hand: :func:`build_suite` derives it from
   ``data.schema``, ``tasks`` and ``validation`` in params.yaml, plus the user's own
   expectations file (``validation.expectations``), so a user who brings their own log with other
   column names gets the matching checks for free. Nothing here names a particular label.
2. The leakage check (mtl/data/leakage.py): a feature that alone predicts a label is an error.
3. Drift and skew against the current champion's training data (mtl/data/drift.py), with warning
   and failure levels; skipped, and said so, when there is no champion yet.

What the suite checks, and why:

- the table has at least ``validation.min_rows`` rows and every column the schema declares
  exists (a missing column is one failing check that names it; the checks of the columns that
  do exist still run);
- numeric features are numbers, the time column is a datetime, labels are numbers or booleans;
- the null policy: a feature may have nulls (they are imputed) but not on every row, unless
  ``validation.columns.<col>.max_null_fraction`` sets a limit; binary labels, the scenario and
  the time column are never null; a regression label is set wherever its task's ``condition``
  holds (dwell time on clicks);
- label domains: binary labels are 0 or 1; ranges (``min``/``max``) and cardinality bounds per
  column from ``validation.columns``;
- funnel rules (``implies``): a label may only be 1 where the label it implies is 1;
- duplicate impressions: no two rows share ``validation.keys`` (or, without keys, all columns);
- the time window: no timestamp later than now plus ``validation.max_future_minutes`` (a clock
  or timezone bug upstream), none older than ``validation.max_age_days``.

Great Expectations is imported inside the functions: it takes seconds to import, and Airflow
imports ``mtl`` every time it parses a DAG file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mtl.config import Config, SchemaConfig

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

SUITE_NAME = "raw_impression_log"
DOCS_SITE = "mtl_validation"

# dtype names as Great Expectations' pandas type check spells them: "Int64" is not understood,
# the nullable pandas dtypes go by their class names ("Int64Dtype").
_INT_TYPES = tuple(f"{p}int{b}" for p in ("", "u") for b in (8, 16, 32, 64)) + tuple(
    f"{p}Int{b}Dtype" for p in ("", "U") for b in (8, 16, 32, 64)
)
_FLOAT_TYPES = ("float16", "float32", "float64", "Float32Dtype", "Float64Dtype")
# "int" and "float" admit Python numbers in an object column (checked value by value).
NUMERIC_TYPES = _INT_TYPES + _FLOAT_TYPES + ("int", "float")
BINARY_TYPES = NUMERIC_TYPES + ("bool", "BooleanDtype")
# Time zones are dropped before validation (see _without_timezone): GX cannot name tz-aware dtypes.
DATETIME_TYPES = ("datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]")


class ExpectationsFileError(ValueError):
    """The user's expectations file cannot be read or names an unknown or malformed expectation."""


@dataclass(frozen=True)
class CheckResult:
    expectation: str  # e.g. "expect_column_to_exist", "leakage", "drift.psi"
    column: str | None  # column, "A>=B" for a pair check, "a,b" for a key, None for a table-level check
    success: bool
    unexpected_count: int | None  # bad rows, where the check counts rows
    detail: str  # one sentence: what is wrong and how to fix it (or what was confirmed)
    # "error": a failure fails validation; "warning": it is reported (log, MLflow run) and the run goes on
    severity: str = "error"
    value: float | None = None  # the measured value, for drift measures


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    rows: int
    checks: tuple[CheckResult, ...]
    # what drift was measured against: {"name": ..., "version": ...}, or {"skipped": why}
    reference: dict = field(default_factory=dict)

    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success and c.severity == "error")

    def warnings(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success and c.severity != "error")

    def to_dict(self) -> dict:
        """JSON-serialisable form, written as the validation metric file."""
        return {
            "success": self.success,
            "rows": self.rows,
            "checks_total": len(self.checks),
            "checks_failed": len(self.failures()),
            "warnings": len(self.warnings()),
            "drift_reference": self.reference,
            "checks": [asdict(c) for c in self.checks],
        }

    def summary(self) -> str:
        """One line when the data is valid; otherwise one line per failed check, then warnings."""
        failed, warned = self.failures(), self.warnings()
        if not failed:
            head = f"Data validation passed: {len(self.checks)} checks on {self.rows:,} rows"
            lines = [head + (f", {len(warned)} warning(s):" if warned else ".")]
        else:
            lines = [f"Data validation failed: {len(failed)} of {len(self.checks)} checks on {self.rows:,} rows."]
            lines += [f"  - {c.detail}" for c in failed]
            if warned:
                lines.append(f"and {len(warned)} warning(s):")
        lines += [f"  - WARNING: {c.detail}" for c in warned]
        if self.reference.get("skipped"):
            lines.append(f"  (drift not checked: {self.reference['skipped']})")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the suite


def _roles(schema: SchemaConfig) -> dict[str, str]:
    """column -> the params.yaml key that declares it, for messages."""
    roles: dict[str, str] = {}
    for key in ("categorical", "numeric", "labels"):
        for col in getattr(schema, key):
            roles.setdefault(col, f"data.schema.{key}")
    for col in schema.sequence:
        roles.setdefault(col, "data.schema.sequence")
    for col in schema.text:
        roles.setdefault(col, "data.schema.text")
    for key in ("scenario", "time", "sequence_time"):
        col = getattr(schema, key)
        if col is not None:
            roles.setdefault(col, f"data.schema.{key}")
    return roles


def _checks(cfg: Config, present: set[str], has_rows: bool, now: dt.datetime) -> Iterable[tuple[str, dict, dict]]:
    """(expectation class name, its arguments, what our messages need) for every check.

    Checks on a column outside ``present`` are left out: GX would only fail them with an
    exception, and the column's absence is already reported by its expect_column_to_exist.
    Without rows only the table, the columns and their types are checked: every value check
    would fail or pass vacuously, burying the one message that matters.
    """
    schema, contract = cfg.data.schema, cfg.validation
    roles = _roles(schema)
    binary = [t for t in cfg.tasks if t.type == "binary" and t.label in present]
    regression = [t for t in cfg.tasks if t.type == "regression" and t.label in present]
    rules = {c: r for c, r in contract.columns.items() if c in present}

    yield "ExpectTableRowCountToBeBetween", {"min_value": contract.min_rows if has_rows else 1}, {
        "kind": "rows", "min_rows": contract.min_rows}
    histories = [*schema.sequence, *([schema.sequence_time] if schema.sequence_time else [])]
    for col in dict.fromkeys([*schema.required_columns(), *histories]):
        yield "ExpectColumnToExist", {"column": col}, {"kind": "exists", "role": roles[col]}

    # types: these hold (or not) even for an empty table
    def type_check(col: str, types: tuple[str, ...], kind: str, **info: str) -> tuple[str, dict, dict]:
        return "ExpectColumnValuesToBeInTypeList", {"column": col, "type_list": list(types)}, {"kind": kind, **info}

    for col in (c for c in schema.numeric if c in present):
        yield type_check(col, NUMERIC_TYPES, "numeric_type", role=roles[col])
    for col in (c for c in histories if c in present):
        yield "ExpectColumnValuesToBeLists", {"column": col}, {"kind": "list_type", "role": roles[col]}
    if schema.time in present:
        yield type_check(schema.time, DATETIME_TYPES, "datetime_type", role=roles[schema.time])
    for task in binary:
        yield type_check(task.label, BINARY_TYPES, "binary_type", task=task.name)
    for task in regression:
        yield type_check(task.label, NUMERIC_TYPES, "regression_type", task=task.name)
    if not has_rows:
        return

    # histories: aligned element by element, and all of it before the row's own time
    present_histories = [c for c in histories if c in present]
    if len(present_histories) > 1:
        yield "ExpectSequencesToBeAligned", {"column_list": present_histories}, {
            "kind": "aligned", "columns": present_histories}
    if schema.sequence_time in present and schema.time in present:
        yield "ExpectHistoryToPrecedeTime", {"column_list": [schema.sequence_time, schema.time]}, {
            "kind": "history_before", "time": schema.time}
    # the null policy (a null history is an empty one: a new user, not an error)
    for col in (c for c in (*schema.features, *schema.text) if c in present):
        limit = rules[col].max_null_fraction if col in rules else None
        if limit is None:
            # strictly above 0: a feature that is null on every row carries no signal.
            yield "ExpectColumnProportionOfNonNullValuesToBeBetween", {
                "column": col, "min_value": 0.0, "strict_min": True}, {"kind": "not_all_null", "role": roles[col]}
        elif limit < 1.0:
            yield "ExpectColumnValuesToNotBeNull", {"column": col, "mostly": 1.0 - limit}, {
                "kind": "null_fraction", "limit": limit}
    for col in dict.fromkeys(c for c in (schema.scenario, schema.time) if c in present):
        yield "ExpectColumnValuesToNotBeNull", {"column": col}, {"kind": "not_null", "role": roles[col]}
    # labels and funnels
    for task in binary:
        yield "ExpectColumnValuesToNotBeNull", {"column": task.label}, {"kind": "label_not_null", "task": task.name}
        yield "ExpectColumnValuesToBeInSet", {"column": task.label, "value_set": [0, 1]}, {
            "kind": "binary_domain", "task": task.name}
        if task.implies in present:
            # label <= implies row by row: no label=1 where implies=0. A null in either column
            # is the not-null checks' business, not a funnel violation.
            pair = {"column_A": task.implies, "column_B": task.label, "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}
            yield "ExpectColumnPairValuesAToBeGreaterThanB", pair, {
                "kind": "funnel", "task": task.name, "label": task.label, "implies": task.implies}
    for task in regression:
        cond = task.condition
        if cond is None:
            yield "ExpectColumnValuesToNotBeNull", {"column": task.label}, {"kind": "label_not_null", "task": task.name}
        elif cond.column in present:
            yield "ExpectColumnValuesToNotBeNull", {"column": task.label, "row_condition": cond}, {
                "kind": "conditional_not_null", "task": task.name, "condition": f"{cond.column} == {cond.equals!r}"}
    # ranges and cardinality
    for col, rule in rules.items():
        if rule.min is not None or rule.max is not None:
            yield "ExpectColumnValuesToBeBetween", {"column": col, "min_value": rule.min, "max_value": rule.max}, {
                "kind": "range", "min": rule.min, "max": rule.max}
        if rule.cardinality is not None:
            lo, hi = rule.cardinality
            yield "ExpectColumnUniqueValueCountToBeBetween", {"column": col, "min_value": lo, "max_value": hi}, {
                "kind": "cardinality", "min": lo, "max": hi}
    # duplicate impressions
    if contract.keys is None or contract.keys:
        # Whole rows: their scalar columns (a list is not hashable, and rows equal in every
        # other column are the same impression whatever their histories).
        whole = [c for c in schema.required_columns() if c not in schema.sequence]
        keys = [c for c in (contract.keys or whole) if c in present]
        if len(keys) == len(contract.keys or keys):
            kind = "duplicate_keys" if contract.keys else "duplicate_rows"
            yield "ExpectImpressionKeysToBeUnique", {"column_list": keys}, {"kind": kind, "keys": keys}
    # the time window, against the wall clock of this validation (naive UTC, as the data)
    if schema.time in present:
        if contract.max_future_minutes is not None:
            latest = now + dt.timedelta(minutes=contract.max_future_minutes)
            yield "ExpectColumnMaxToBeBetween", {"column": schema.time, "max_value": latest.isoformat()}, {
                "kind": "future", "limit": latest.isoformat(sep=" ", timespec="minutes")}
        if contract.max_age_days is not None:
            earliest = now - dt.timedelta(days=contract.max_age_days)
            yield "ExpectColumnMinToBeBetween", {"column": schema.time, "min_value": earliest.isoformat()}, {
                "kind": "too_old", "limit": earliest.isoformat(sep=" ", timespec="minutes")}


def _note(kind: str, column: str | None, info: dict) -> str:
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
        "range": lambda: f"'{column}' is within [{_bound(info.get('min'), '-inf')}, {_bound(info.get('max'), 'inf')}]",
        "cardinality": lambda: f"'{column}' has between {_bound(info.get('min'), '-inf')} and {_bound(info.get('max'), 'inf')} distinct values",
        "duplicate_keys": lambda: f"no two rows share the key ({column})",
        "duplicate_rows": lambda: "no row appears twice",
        "future": lambda: f"time column '{column}' is not later than {info.get('limit')} UTC",
        "too_old": lambda: f"time column '{column}' is not earlier than {info.get('limit')} UTC",
        "user": lambda: f"{info.get('type')} on {column or 'the table'} ({info.get('source')})",
        "list_type": lambda: f"history column '{column}' holds a list on every row",
        "aligned": lambda: f"history columns {info.get('columns')} have as many elements on every row",
        "history_before": lambda: f"every element of '{column}' is earlier than its row's '{info.get('time')}'",
    }
    return notes[kind]()


def _bound(value: Any, unset: str = "any") -> str:
    return unset if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _expectation_classes() -> dict[str, type]:
    """GX expectation classes by their snake_case type ("expect_column_values_to_be_between")."""
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    from mtl.data import gx_custom

    classes = {}
    for module in (gx.expectations, gx_custom):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Expectation) and obj.__name__.startswith("Expect"):
                classes[obj.expectation_type] = obj
    return classes


def load_expectations(path: Path) -> list[dict]:
    """The user's extra expectations: a YAML list in the form of a GX 1.x suite's ``expectations``
    (``type``, ``kwargs``, optional ``notes`` and ``severity`` warning|critical), checked here so
    a typo stops the run naming the entry instead of failing deep inside GX."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ExpectationsFileError(f"validation.expectations: {path} does not exist; create it or set "
                                    f"validation.expectations to null") from None
    except yaml.YAMLError as err:
        raise ExpectationsFileError(f"{path} is not valid YAML: {err}") from None
    if raw is None:
        return []
    if isinstance(raw, dict) and "expectations" in raw:  # a whole GX suite file
        raw = raw["expectations"]
    if not isinstance(raw, list):
        raise ExpectationsFileError(f"{path}: expected a list of expectations (- type: ..., kwargs: {{...}})")
    classes = _expectation_classes()
    entries = []
    for i, entry in enumerate(raw, 1):
        where = f"{path}, expectation {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ExpectationsFileError(f"{where}: needs `type` (e.g. expect_column_values_to_be_between) and `kwargs`")
        unknown = set(entry) - {"type", "kwargs", "notes", "severity", "meta"}
        if unknown:
            raise ExpectationsFileError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: type, kwargs, notes, severity")
        if entry["type"] not in classes:
            import difflib

            near = difflib.get_close_matches(entry["type"], list(classes), n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise ExpectationsFileError(f"{where}: unknown expectation type {entry['type']!r}{hint}")
        severity = entry.get("severity", "critical")
        if severity not in ("critical", "warning"):
            raise ExpectationsFileError(f"{where}: severity must be critical or warning, not {severity!r}")
        kwargs = entry.get("kwargs") or {}
        try:
            classes[entry["type"]](**kwargs)
        except Exception as err:  # pydantic's message names the argument
            raise ExpectationsFileError(f"{where} ({entry['type']}): invalid kwargs: {err}") from None
        entries.append({"type": entry["type"], "kwargs": kwargs, "notes": entry.get("notes"),
                        "severity": severity, "source": f"{Path(path).name} #{i}"})
    return entries


def build_suite(cfg: Config, columns: Iterable[str] | None = None, has_rows: bool = True,
                extra: Iterable[dict] = (), now: dt.datetime | None = None) -> "gx.ExpectationSuite":
    """The GX suite for the schema, tasks and data contract of ``cfg``, plus ``extra``
    expectations (from :func:`load_expectations`).

    ``columns``: the columns the data actually has. Checks on other columns are left out (each
    missing column still fails its own existence check). None: every declared column.
    ``has_rows=False`` (an empty table) keeps only the table, column and type checks.
    ``now`` (naive UTC) is the clock the time window is checked against.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    from mtl.data import gx_custom

    present = set(cfg.data.schema.required_columns() if columns is None else columns)
    expectations = []
    for order, (class_name, kwargs, info) in enumerate(_checks(cfg, present, has_rows, now or _utcnow())):
        cond = kwargs.pop("row_condition", None)
        if cond is not None:
            kwargs["row_condition"] = Column(cond.column) == cond.equals
        column = kwargs.get("column")
        if "column_A" in kwargs:
            column = f"{kwargs['column_A']}>={kwargs['column_B']}"
        if "column_list" in kwargs:
            column = ",".join(kwargs["column_list"])
        expectation_cls = getattr(gx.expectations, class_name, None) or getattr(gx_custom, class_name)
        expectations.append(
            expectation_cls(
                **kwargs,
                notes=_note(info["kind"], column, info),
                meta={"mtl": {**info, "column": column, "order": order}},
            )
        )
    if has_rows:
        classes = _expectation_classes()
        for order, entry in enumerate(extra, start=len(expectations)):
            kwargs = dict(entry["kwargs"])
            column = kwargs.get("column") or (",".join(kwargs["column_list"]) if "column_list" in kwargs else None)
            info = {"kind": "user", "type": entry["type"], "source": entry["source"], "column": column,
                    "order": order, "severity": entry["severity"]}
            expectations.append(classes[entry["type"]](
                **kwargs, notes=entry.get("notes") or _note("user", column, info), meta={"mtl": info},
                severity=entry["severity"]))
    # Passed to the constructor: suite.add_expectation() would look for an active data context.
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


# --------------------------------------------------------------------------- messages


def _failure_detail(kind: str, column: str | None, info: dict, n: int | None, observed: str | None) -> str:
    """One sentence for a failed check: what is wrong, where, and how to fix it."""
    rows = "?" if n is None else f"{n:,}"
    task = info.get("task")
    # A type check on a pandas dtype reports the dtype; on an object column it checks each value.
    found = f"dtype {observed}" if observed is not None else f"{rows} values of another type"
    if kind == "rows" and observed in (None, "0"):
        return "the log has no rows: check data.source (or data.synthetic.rows) and re-run the generate stage"
    if kind == "exists":
        return (f"missing column '{column}': it is declared in {info['role']}; add it to the data or remove it "
                f"from {info['role']} and from any task that uses it")
    if kind == "numeric_type":
        return (f"'{column}' has {found} but is declared numeric: convert it to int or float, or move it to "
                f"data.schema.categorical")
    if kind == "regression_type":
        return f"regression label '{column}' has {found}: convert it to int or float"
    if kind == "binary_type":
        return f"binary label '{column}' has {found}: encode it as 0/1 integers"
    if kind == "datetime_type":
        return (f"time column '{column}' has {found}: store it as a datetime (parse it, e.g. with "
                f"pandas.to_datetime, before writing the log) or unset data.schema.time to split randomly")
    if kind == "not_all_null":
        return f"'{column}': null on all {rows} rows: fill it or remove it from {info['role']}"
    if kind == "not_null":
        return (f"'{column}': {rows} rows are null: the {info['role']} column must be set on every row; "
                f"fill or drop them")
    if kind == "label_not_null":
        return f"'{column}': {rows} rows have no label (null): fill them or drop those rows"
    if kind == "binary_domain":
        return f"'{column}': {rows} rows have a value other than 0 or 1: recode the label to 0/1"
    if kind == "conditional_not_null":
        return (f"'{column}': {rows} rows are null where {info['condition']}: task '{task}' needs a value on every "
                f"such row; fill them, drop those rows or change the task's condition")
    if kind == "rows":
        return (f"the log has {int(float(observed)):,} rows, fewer than validation.min_rows ({info['min_rows']:,}): a batch this "
                f"small is usually a broken or partial export; check the source, or lower validation.min_rows")
    if kind == "null_fraction":
        return (f"'{column}': {rows} rows are null, more than validation.columns.{column}.max_null_fraction "
                f"({info['limit']:.1%}) allows; fill them or raise the limit")
    if kind == "range":
        return (f"'{column}': {rows} rows are outside [{_bound(info['min'], '-inf')}, {_bound(info['max'], 'inf')}] "
                f"(validation.columns.{column}); fix or drop them, or widen the range if they are valid")
    if kind == "cardinality":
        return (f"'{column}' has {observed} distinct values, outside [{_bound(info['min'], '-inf')}, {_bound(info['max'], 'inf')}] "
                f"(validation.columns.{column}.cardinality): check that the column holds what data.schema says")
    if kind in ("duplicate_keys", "duplicate_rows"):
        what = f"the same key ({column}, validation.keys)" if kind == "duplicate_keys" else "an identical row"
        return (f"{rows} rows share {what} with another row: impressions were logged or exported twice; "
                f"drop the duplicates" + (" (or correct validation.keys)" if kind == "duplicate_keys" else ""))
    if kind == "future":
        return (f"time column '{column}' reaches {observed}, later than {info['limit']} UTC (now + "
                f"validation.max_future_minutes): timestamps in the future mean a clock or timezone bug "
                f"upstream; fix the timestamps (store them in UTC)")
    if kind == "too_old":
        return (f"time column '{column}' goes back to {observed}, before {info['limit']} UTC "
                f"(validation.max_age_days): drop the old rows or raise validation.max_age_days")
    if kind == "list_type":
        return (f"history column '{column}' ({info['role']}): {rows} values are not lists; store one list per row, "
                f"oldest element first (parquet list column, or JSON text such as [3, 17] in a CSV)")
    if kind == "aligned":
        return (f"history columns {info['columns']}: {rows} rows hold lists of different lengths; element i of each "
                f"must describe the same event, so they must have as many elements")
    if kind == "history_before":
        return (f"'{column}': on {rows} rows a history element is at or after the row's '{info['time']}': a history "
                f"must hold only what happened before the impression (its own click is a label leak); rebuild the "
                f"histories from events strictly earlier than each row")
    if kind == "user":
        got = f"{rows} unexpected rows" if n is not None else f"observed {observed}"
        return (f"{info['source']}: {info['type']} on {column or 'the table'} failed ({got}); fix the data or the "
                f"expectation in validation.expectations")
    if kind == "funnel":
        label, implies = info["label"], info["implies"]
        return (f"{label}: {rows} rows with {label}=1 but {implies}!=1: the funnel requires {implies} before "
                f"{label}; fix the labels or remove `implies: {implies}` from task '{task}'")
    raise AssertionError(f"no message for check kind {kind!r}")


def _exception_message(exception_info: dict | None) -> str | None:
    """The error a check raised, if any.

    GX reports it either flat ({"raised_exception": ...}) or per metric that failed
    ({metric id: {"raised_exception": ...}}).
    """
    infos = [exception_info or {}]
    if "raised_exception" not in infos[0]:
        infos = [v for v in infos[0].values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "unknown error")
    return None


def _check_result(result: Any, rows: int) -> CheckResult:
    config = result.expectation_config
    info = config.meta["mtl"]
    kind, column = info["kind"], info["column"]
    severity = "warning" if info.get("severity") == "warning" else "error"
    error = _exception_message(result.exception_info)
    if error is not None:
        detail = f"could not check that {_note(kind, column, info)} ({error}): check the column's values and type"
        return CheckResult(config.type, column, False, None, detail, severity)
    res = result.result or {}
    n = res.get("unexpected_count")
    if kind == "not_all_null":  # a proportion, not a count: when it fails, every row is null
        n = None if result.success else rows
    unexpected = None if n is None else int(n)
    if result.success:
        return CheckResult(config.type, column, True, unexpected, f"ok: {_note(kind, column, info)}", severity)
    observed = res.get("observed_value")
    detail = _failure_detail(kind, column, info, unexpected, None if observed is None else str(observed))
    return CheckResult(config.type, column, False, unexpected, detail, severity)


# --------------------------------------------------------------------------- running it


def _context(docs_dir: Path | None) -> "gx.data_context.AbstractDataContext":
    """An in-memory GX context (nothing written but the Data Docs site, if asked for)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(docs_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _without_timezone(df: "pd.DataFrame", time: str | None) -> "pd.DataFrame":
    """``df`` with a tz-aware time column as naive UTC, leaving ``df`` itself untouched.

    GX's type check cannot name a tz-aware dtype; the zone does not matter for validity.
    """
    import pandas as pd

    if time is None or time not in df.columns or not isinstance(df[time].dtype, pd.DatetimeTZDtype):
        return df
    return df.assign(**{time: df[time].dt.tz_convert(None)})


def read_log(path: Path, cfg: Config) -> "pd.DataFrame":
    """The columns of the raw log that validation looks at, compactly: text columns stay
    dictionary-encoded (pandas categoricals) and Arrow buffers are released as they convert, so
    10M rows fit in a few GB."""
    import pyarrow.parquet as pq

    schema_ = cfg.data.schema
    # validation.keys are among the required columns (config checks it)
    wanted = set(schema_.required_columns()) | ({schema_.sequence_time} if schema_.sequence_time else set())
    schema = pq.read_schema(path)
    columns = [n for n in schema.names if n in wanted]
    text = [n for n in columns if str(schema.field(n).type) in ("string", "large_string")]
    table = pq.read_table(path, columns=columns, read_dictionary=text)
    from mtl.data.features import keep_lists

    return table.to_pandas(self_destruct=True, split_blocks=True, types_mapper=keep_lists, ignore_metadata=True)


def _run_suite(frame: "pd.DataFrame", cfg: Config, docs_dir: Path | None, extra: Iterable[dict],
               now: dt.datetime | None) -> tuple[CheckResult, ...]:
    """The GX suite through a Checkpoint (which also builds Data Docs into ``docs_dir``)."""
    import great_expectations as gx

    suite = build_suite(cfg, columns=[str(c) for c in frame.columns], has_rows=len(frame) > 0, extra=extra, now=now)
    context = _context(docs_dir)
    suite = context.suites.add(suite)
    batch = (
        context.data_sources.add_pandas("raw")
        .add_dataframe_asset("impressions")
        .add_batch_definition_whole_dataframe("whole_log")
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="raw_log", data=batch, suite=suite))
    actions = []
    if docs_dir is not None:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE]))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="validate_raw",
            validation_definitions=[definition],
            actions=actions,
            # counts of bad rows and a few examples, never the full list of them
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    (validation,) = outcome.run_results.values()
    ordered = sorted(validation.results, key=lambda r: r.expectation_config.meta["mtl"]["order"])
    return tuple(_check_result(r, len(frame)) for r in ordered)


def _leak_checks(frame: "pd.DataFrame", cfg: Config) -> tuple[CheckResult, ...]:
    from mtl.data.leakage import find_label_leaks

    threshold = cfg.validation.leak_threshold
    leaks = find_label_leaks(frame, cfg)
    if not leaks:
        return (CheckResult("leakage", None, True, None,
                            f"ok: no feature alone predicts a label at or above {threshold}"),)
    return tuple(CheckResult("leakage", f"{lk.feature}->{lk.task}", False, None, lk.describe(threshold),
                             value=lk.score) for lk in leaks)


def _drift_checks(frame: "pd.DataFrame", cfg: Config, reference: dict) -> tuple[CheckResult, ...]:
    from mtl.data.drift import compare

    out = []
    for m in compare(frame, reference, cfg):
        ok = m.level == "ok"
        out.append(CheckResult(f"drift.{m.check}", m.column, ok, None, m.detail if not ok else f"ok: {m.detail}",
                               "warning" if m.level == "warning" else "error", m.value))
    return tuple(out)


def validate_frame(df: "pd.DataFrame", cfg: Config, docs_dir: Path | None = None, reference: dict | None = None,
                   extra: Iterable[dict] = (), now: dt.datetime | None = None) -> ValidationReport:
    """The whole data contract on ``df``; never modifies ``df``.

    The GX suite runs through a Checkpoint; with ``docs_dir`` it also builds GX Data Docs there
    (``docs_dir/index.html``). ``reference``: the champion's transform statistics for the drift
    checks ({"name", "stats", "categorical"}), or {"skipped": why}; None: not checked.
    ``extra``: the user's expectations (:func:`load_expectations`). ``now``: the clock (naive
    UTC) the time window is checked against; default the current time.
    """
    from concurrent.futures import ThreadPoolExecutor

    frame = _without_timezone(df, cfg.data.schema.time)
    reference = reference or {}

    def statistical() -> tuple[CheckResult, ...]:
        found = _leak_checks(frame, cfg)
        return found + (_drift_checks(frame, cfg, reference) if reference.get("stats") is not None else ())

    # Leakage and drift run beside the suite: much of either is numpy and pandas work that
    # releases the GIL, so on two cores they take about a third off a 10M-row validation.
    with ThreadPoolExecutor(1, thread_name_prefix="mtl-drift") as pool:
        later = pool.submit(statistical)
        checks = _run_suite(frame, cfg, docs_dir, extra, now)
        # Leakage and drift need the columns and types the suite has just confirmed; on a log
        # that broke those, their numbers (or errors) would mean nothing and bury the messages
        # that do.
        structural = ("expect_column_to_exist", "expect_column_values_to_be_in_type_list",
                      "expect_table_row_count_to_be_between")
        sound = not any(c.expectation in structural for c in checks if not c.success)
        if sound:
            checks += later.result()
        else:
            later.exception()  # wait for it, and drop whatever it found or raised
            if reference.get("stats") is not None:
                reference = {"skipped": "the log failed the structural checks", "name": reference.get("name")}
    summary = {k: v for k, v in reference.items() if k not in ("stats", "categorical")}
    success = not any(not c.success and c.severity == "error" for c in checks)
    return ValidationReport(success=success, rows=len(frame), checks=checks, reference=summary)


def validate_file(path: Path, cfg: Config, docs_dir: Path | None = None, reference: dict | None = None,
                  expectations: Path | None = None, now: dt.datetime | None = None) -> ValidationReport:
    """:func:`validate_frame` on the raw log at ``path`` (read with :func:`read_log`), with the
    user's expectations file. Great Expectations is imported on a second thread while the log
    is read: the import is Python work, the read is Arrow's threads, so the two overlap (about
    3 s of a 10M-row validation)."""
    import importlib
    import threading

    loader = threading.Thread(target=importlib.import_module, args=("great_expectations",), daemon=True)
    loader.start()
    frame = read_log(path, cfg)
    loader.join()
    extra = load_expectations(expectations) if expectations is not None else []
    return validate_frame(frame, cfg, docs_dir=docs_dir, reference=reference, extra=extra, now=now)
