"""The Great Expectations suite of the raw log, derived from params.yaml (``data.schema``,
``tasks``, ``validation``) plus the user's expectations file: see validation.py for what it
checks and why. Great Expectations is imported inside the functions (seconds to import)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mtl.config import Config, PanelConfig, SchemaConfig, TaskConfig
from mtl.data.contracts.messages import note

if TYPE_CHECKING:
    import great_expectations as gx

SUITE_NAME = "raw_impression_log"

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
    yield from _structure_checks(cfg, present, has_rows)
    if has_rows:
        yield from _value_checks(cfg, present)
        yield from _table_checks(cfg, present, now)
        if cfg.data.panel is not None:
            yield from _panel_checks(cfg.data.panel, present)


def _histories(schema: SchemaConfig) -> list[str]:
    return [*schema.sequence, *([schema.sequence_time] if schema.sequence_time else [])]


def _structure_checks(cfg: Config, present: set[str], has_rows: bool) -> Iterable[tuple[str, dict, dict]]:
    """The table, its columns and their types: these hold (or not) even for an empty table."""
    schema, contract = cfg.data.raw_schema, cfg.validation
    roles = _roles(schema)
    yield "ExpectTableRowCountToBeBetween", {"min_value": contract.min_rows if has_rows else 1}, {
        "kind": "rows", "min_rows": contract.min_rows}
    histories = _histories(schema)
    for col in dict.fromkeys([*schema.required_columns(), *histories]):
        yield "ExpectColumnToExist", {"column": col}, {"kind": "exists", "role": roles[col]}

    def type_check(col: str, types: tuple[str, ...], kind: str, **info: str) -> tuple[str, dict, dict]:
        return "ExpectColumnValuesToBeInTypeList", {"column": col, "type_list": list(types)}, {"kind": kind, **info}

    for col in (c for c in schema.numeric if c in present):
        yield type_check(col, NUMERIC_TYPES, "numeric_type", role=roles[col])
    for col in (c for c in histories if c in present):
        yield "ExpectColumnValuesToBeLists", {"column": col}, {"kind": "list_type", "role": roles[col]}
    if schema.time in present:
        yield type_check(schema.time, DATETIME_TYPES, "datetime_type", role=roles[schema.time])
    for task in (t for t in cfg.raw_tasks if t.type == "binary" and t.label in present):
        yield type_check(task.label, BINARY_TYPES, "binary_type", task=task.name)
    for task in (t for t in cfg.raw_tasks if t.type == "regression" and t.label in present):
        yield type_check(task.label, NUMERIC_TYPES, "regression_type", task=task.name)


def _value_checks(cfg: Config, present: set[str]) -> Iterable[tuple[str, dict, dict]]:
    """Histories, the null policy, labels and funnels."""
    schema, rules = cfg.data.raw_schema, {c: r for c, r in cfg.validation.columns.items() if c in present}
    roles = _roles(schema)
    # histories: aligned element by element, and all of it before the row's own time
    present_histories = [c for c in _histories(schema) if c in present]
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
    yield from _label_checks(cfg.raw_tasks, present)


def _label_checks(tasks: tuple[TaskConfig, ...], present: set[str]) -> Iterable[tuple[str, dict, dict]]:
    for task in (t for t in tasks if t.type == "binary" and t.label in present):
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
    for task in (t for t in tasks if t.type == "regression" and t.label in present):
        cond = task.condition
        if cond is None:
            yield "ExpectColumnValuesToNotBeNull", {"column": task.label}, {"kind": "label_not_null", "task": task.name}
        elif cond.column in present:
            yield "ExpectColumnValuesToNotBeNull", {"column": task.label, "row_condition": cond}, {
                "kind": "conditional_not_null", "task": task.name, "condition": f"{cond.column} == {cond.equals!r}"}


def _table_checks(cfg: Config, present: set[str], now: dt.datetime) -> Iterable[tuple[str, dict, dict]]:
    """Ranges and cardinality per column, duplicate impressions, the time window."""
    schema, contract = cfg.data.raw_schema, cfg.validation
    for col, rule in contract.columns.items():
        if col not in present:
            continue
        if rule.min is not None or rule.max is not None:
            yield "ExpectColumnValuesToBeBetween", {"column": col, "min_value": rule.min, "max_value": rule.max}, {
                "kind": "range", "min": rule.min, "max": rule.max}
        if rule.cardinality is not None:
            lo, hi = rule.cardinality
            yield "ExpectColumnUniqueValueCountToBeBetween", {"column": col, "min_value": lo, "max_value": hi}, {
                "kind": "cardinality", "min": lo, "max": hi}
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


def _panel_checks(panel: PanelConfig, present: set[str]) -> Iterable[tuple[str, dict, dict]]:
    """A daily panel: keyed by series and day, once each, no day missing inside a series, units
    never negative, events 0 or 1, sales never above what was available."""
    key = [*panel.series, panel.time]
    for col in (c for c in key if c in present):
        yield "ExpectColumnValuesToNotBeNull", {"column": col}, {"kind": "not_null", "role": "data.panel key"}
    if set(key) <= present:
        yield "ExpectImpressionKeysToBeUnique", {"column_list": key}, {"kind": "panel_days_unique", "keys": key}
        yield "ExpectSeriesDaysToBeContiguous", {"column_list": key}, {"kind": "panel_gaps", "keys": key}
    for col in (c for c in dict.fromkeys(panel.sums.values()) if c in present):
        yield "ExpectColumnValuesToBeBetween", {"column": col, "min_value": 0}, {"kind": "panel_negative"}
    for col in (c for c in dict.fromkeys(panel.events.values()) if c in present):
        yield "ExpectColumnValuesToBeInSet", {"column": col, "value_set": [0, 1]}, {"kind": "panel_event"}
    for col, limit in panel.capacity.items():
        if col in present and limit in present:
            pair = {"column_A": limit, "column_B": col, "or_equal": True, "ignore_row_if": "either_value_is_missing"}
            yield "ExpectColumnPairValuesAToBeGreaterThanB", pair, {"kind": "panel_capacity", "limit": limit,
                                                                     "sales": col}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _expectation_classes() -> dict[str, type]:
    """GX expectation classes by their snake_case type ("expect_column_values_to_be_between")."""
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    from mtl.data.contracts import gx_custom

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

    from mtl.data.contracts import gx_custom

    present = set(cfg.data.raw_schema.required_columns() if columns is None else columns)
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
                notes=note(info["kind"], column, info),
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
                **kwargs, notes=entry.get("notes") or note("user", column, info), meta={"mtl": info},
                severity=entry["severity"]))
    # Passed to the constructor: suite.add_expectation() would look for an active data context.
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)
