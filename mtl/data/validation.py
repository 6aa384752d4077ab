"""Validation of the raw impression log with a Great Expectations suite derived from the schema.

The suite is not written by hand: :func:`build_suite` derives it from ``data.schema`` and
``tasks`` in params.yaml, so a user who brings their own log with other column names gets the
matching checks for free. Nothing here names a particular label.

What is checked, and why:

- the table has rows and every column the schema declares exists (a missing column is one
  failing check that names it; the checks of the columns that do exist still run);
- numeric features are numbers, the time column is a datetime, labels are numbers or booleans;
- no feature column is null on every row (it would carry no signal);
- binary labels are never null and only 0 or 1; the scenario and time columns are never null;
- a regression label is set wherever its task's ``condition`` holds (dwell time on clicks);
- funnel rules (``implies``): a label may only be 1 where the label it implies is 1.

Great Expectations is imported inside the functions: it takes seconds to import, and Airflow
imports ``mtl`` every time it parses a DAG file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class CheckResult:
    expectation: str  # e.g. "expect_column_to_exist"
    column: str | None  # column, "A>=B" for a pair check, None for a table-level check
    success: bool
    unexpected_count: int | None  # bad rows, where the check counts rows
    detail: str  # one sentence: what is wrong and how to fix it (or what was confirmed)


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    rows: int
    checks: tuple[CheckResult, ...]

    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success)

    def to_dict(self) -> dict:
        """JSON-serialisable form, written as the validation metric file."""
        return {
            "success": self.success,
            "rows": self.rows,
            "checks_total": len(self.checks),
            "checks_failed": len(self.failures()),
            "checks": [asdict(c) for c in self.checks],
        }

    def summary(self) -> str:
        """One line when the data is valid; otherwise one line per failed check."""
        failed = self.failures()
        if not failed:
            return f"Data validation passed: {len(self.checks)} checks on {self.rows:,} rows."
        lines = [f"Data validation failed: {len(failed)} of {len(self.checks)} checks on {self.rows:,} rows."]
        lines += [f"  - {c.detail}" for c in failed]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the suite


def _roles(schema: SchemaConfig) -> dict[str, str]:
    """column -> the params.yaml key that declares it, for messages."""
    roles: dict[str, str] = {}
    for key in ("categorical", "numeric", "labels"):
        for col in getattr(schema, key):
            roles.setdefault(col, f"data.schema.{key}")
    for key in ("scenario", "time"):
        col = getattr(schema, key)
        if col is not None:
            roles.setdefault(col, f"data.schema.{key}")
    return roles


def _checks(cfg: Config, present: set[str], has_rows: bool) -> Iterable[tuple[str, dict, dict]]:
    """(expectation class name, its arguments, what our messages need) for every check.

    Checks on a column outside ``present`` are left out: GX would only fail them with an
    exception, and the column's absence is already reported by its expect_column_to_exist.
    Without rows only the table, the columns and their types are checked: every value check
    would fail or pass vacuously, burying the one message that matters.
    """
    schema = cfg.data.schema
    roles = _roles(schema)
    binary = [t for t in cfg.tasks if t.type == "binary" and t.label in present]
    regression = [t for t in cfg.tasks if t.type == "regression" and t.label in present]

    yield "ExpectTableRowCountToBeBetween", {"min_value": 1}, {"kind": "rows"}
    for col in schema.required_columns():
        yield "ExpectColumnToExist", {"column": col}, {"kind": "exists", "role": roles[col]}

    # types: these hold (or not) even for an empty table
    def type_check(col: str, types: tuple[str, ...], kind: str, **info: str) -> tuple[str, dict, dict]:
        return "ExpectColumnValuesToBeInTypeList", {"column": col, "type_list": list(types)}, {"kind": kind, **info}

    for col in (c for c in schema.numeric if c in present):
        yield type_check(col, NUMERIC_TYPES, "numeric_type", role=roles[col])
    if schema.time in present:
        yield type_check(schema.time, DATETIME_TYPES, "datetime_type", role=roles[schema.time])
    for task in binary:
        yield type_check(task.label, BINARY_TYPES, "binary_type", task=task.name)
    for task in regression:
        yield type_check(task.label, NUMERIC_TYPES, "regression_type", task=task.name)
    if not has_rows:
        return

    # values
    for col in (c for c in schema.features if c in present):
        # strictly above 0: a feature that is null on every row carries no signal.
        yield "ExpectColumnProportionOfNonNullValuesToBeBetween", {
            "column": col, "min_value": 0.0, "strict_min": True}, {"kind": "not_all_null", "role": roles[col]}
    for col in dict.fromkeys(c for c in (schema.scenario, schema.time) if c in present):
        yield "ExpectColumnValuesToNotBeNull", {"column": col}, {"kind": "not_null", "role": roles[col]}
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


def _note(kind: str, column: str | None, info: dict) -> str:
    """What a check expects, in words (shown in Data Docs and on success)."""
    return {
        "rows": "the log has at least one row",
        "exists": f"column '{column}' exists (declared in {info.get('role')})",
        "numeric_type": f"'{column}' is a numeric (int or float) column",
        "datetime_type": f"time column '{column}' is a datetime column",
        "binary_type": f"binary label '{column}' is an integer, boolean or float column",
        "regression_type": f"regression label '{column}' is a numeric column",
        "not_all_null": f"feature '{column}' is not null on every row",
        "not_null": f"'{column}' is never null",
        "label_not_null": f"label '{column}' is never null",
        "binary_domain": f"binary label '{column}' is 0 or 1",
        "conditional_not_null": f"'{column}' is set wherever {info.get('condition')}",
        "funnel": f"'{info.get('label')}' is 1 only where '{info.get('implies')}' is 1 (funnel rule)",
    }[kind]


def build_suite(cfg: Config, columns: Iterable[str] | None = None, has_rows: bool = True) -> "gx.ExpectationSuite":
    """The GX suite for the schema and tasks of ``cfg``.

    ``columns``: the columns the data actually has. Checks on other columns are left out (each
    missing column still fails its own existence check). None: every declared column.
    ``has_rows=False`` (an empty table) keeps only the table, column and type checks.
    """
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    present = set(cfg.data.schema.required_columns() if columns is None else columns)
    expectations = []
    for order, (class_name, kwargs, info) in enumerate(_checks(cfg, present, has_rows)):
        cond = kwargs.pop("row_condition", None)
        if cond is not None:
            kwargs["row_condition"] = Column(cond.column) == cond.equals
        column = kwargs.get("column")
        if "column_A" in kwargs:
            column = f"{kwargs['column_A']}>={kwargs['column_B']}"
        expectation_cls = getattr(gx.expectations, class_name)
        expectations.append(
            expectation_cls(
                **kwargs,
                notes=_note(info["kind"], column, info),
                meta={"mtl": {**info, "column": column, "order": order}},
            )
        )
    # Passed to the constructor: suite.add_expectation() would look for an active data context.
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


# --------------------------------------------------------------------------- messages


def _failure_detail(kind: str, column: str | None, info: dict, n: int | None, observed: str | None) -> str:
    """One sentence for a failed check: what is wrong, where, and how to fix it."""
    rows = "?" if n is None else f"{n:,}"
    task = info.get("task")
    # A type check on a pandas dtype reports the dtype; on an object column it checks each value.
    found = f"dtype {observed}" if observed is not None else f"{rows} values of another type"
    if kind == "rows":
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
    error = _exception_message(result.exception_info)
    if error is not None:
        detail = f"could not check that {_note(kind, column, info)} ({error}): check the column's values and type"
        return CheckResult(config.type, column, False, None, detail)
    res = result.result or {}
    n = res.get("unexpected_count")
    if kind == "not_all_null":  # a proportion, not a count: when it fails, every row is null
        n = None if result.success else rows
    unexpected = None if n is None else int(n)
    if result.success:
        return CheckResult(config.type, column, True, unexpected, f"ok: {_note(kind, column, info)}")
    observed = res.get("observed_value")
    detail = _failure_detail(kind, column, info, unexpected, None if observed is None else str(observed))
    return CheckResult(config.type, column, False, unexpected, detail)


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


def validate_frame(df: "pd.DataFrame", cfg: Config, docs_dir: Path | None = None) -> ValidationReport:
    """Run the schema's suite on ``df`` through a GX Checkpoint; never modifies ``df``.

    With ``docs_dir``, the Checkpoint also builds GX Data Docs there (``docs_dir/index.html``).
    """
    import great_expectations as gx

    frame = _without_timezone(df, cfg.data.schema.time)
    suite = build_suite(cfg, columns=[str(c) for c in frame.columns], has_rows=len(frame) > 0)
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
    rows = len(frame)
    ordered = sorted(validation.results, key=lambda r: r.expectation_config.meta["mtl"]["order"])
    checks = tuple(_check_result(r, rows) for r in ordered)
    return ValidationReport(success=all(c.success for c in checks), rows=rows, checks=checks)
