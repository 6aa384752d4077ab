"""Validation of the raw impression log: the data contract, enforced before anything is fitted.

Three parts, one report (:class:`ValidationReport`, written as the validate stage's DVC metric):

1. A Great Expectations suite, not written by hand: :func:`build_suite` derives it from
   ``data.schema``, ``tasks`` and ``validation`` in params.yaml, plus the user's own
   expectations file (``validation.expectations``), so a user who brings their own log with other
   column names gets the matching checks for free. Nothing here names a particular label.
2. The leakage check (mtl/data/contracts/leakage.py): a feature that alone predicts a label is an error.
3. Drift and skew against the current champion's training data (mtl/data/contracts/drift.py), with warning
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
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mtl.config import Config, SchemaConfig
from mtl.data.contracts.report import CheckResult, ValidationReport, check_result
from mtl.data.contracts.suite import build_suite, load_expectations

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

DOCS_SITE = "mtl_validation"


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


def read_log(path: Path, schema_: SchemaConfig) -> "pd.DataFrame":
    """The columns of the raw log that validation looks at, compactly: text columns stay
    dictionary-encoded (pandas categoricals) and Arrow buffers are released as they convert, so
    10M rows fit in a few GB."""
    import pyarrow.parquet as pq

    # validation.keys are among the required columns (config checks it)
    wanted = set(schema_.required_columns()) | ({schema_.sequence_time} if schema_.sequence_time else set())
    schema = pq.read_schema(path)
    columns = [n for n in schema.names if n in wanted]
    text = [n for n in columns if str(schema.field(n).type) in ("string", "large_string")]
    table = pq.read_table(path, columns=columns, read_dictionary=text)
    from mtl.data.columns import keep_lists

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
    return tuple(check_result(r, len(frame)) for r in ordered)


def _leak_checks(frame: "pd.DataFrame", cfg: Config) -> tuple[CheckResult, ...]:
    from mtl.data.contracts.leakage import find_label_leaks

    threshold = cfg.validation.leak_threshold
    leaks = find_label_leaks(frame, cfg)
    if not leaks:
        return (CheckResult("leakage", None, True, None,
                            f"ok: no feature alone predicts a label at or above {threshold}"),)
    return tuple(CheckResult("leakage", f"{lk.feature}->{lk.task}", False, None, lk.describe(threshold),
                             value=lk.score) for lk in leaks)


def _drift_checks(frame: "pd.DataFrame", cfg: Config, reference: dict) -> tuple[CheckResult, ...]:
    from mtl.data.contracts.drift import compare

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

    frame = _without_timezone(df, cfg.data.raw_schema.time)
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
    frame = read_log(path, cfg.data.raw_schema)
    loader.join()
    extra = load_expectations(expectations) if expectations is not None else []
    return validate_frame(frame, cfg, docs_dir=docs_dir, reference=reference, extra=extra, now=now)
