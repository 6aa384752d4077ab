"""Data tests: the Great Expectations suite derived from the schema catches what it should."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl.config import Config, parse_config
from mtl.data.ingest import synthetic
from mtl.data.contracts.report import ValidationReport
from mtl.data.contracts.suite import build_suite
from mtl.data.contracts.validation import validate_frame

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
SMALL = {"rows": 5_000, "users": 500, "items": 300, "categories": 20, "brands": 50}


def _raw_params() -> dict:
    raw = yaml.safe_load(PARAMS.read_text())
    raw["data"]["synthetic"].update(SMALL)
    raw["validation"]["min_rows"] = 1_000
    return raw


@pytest.fixture(scope="module")
def cfg() -> Config:
    return parse_config(_raw_params())


@pytest.fixture(scope="module")
def _clean(cfg) -> pd.DataFrame:
    return synthetic.generate(cfg.data.synthetic)


@pytest.fixture
def log(_clean) -> pd.DataFrame:
    """A fresh copy of the clean synthetic log for each test to break."""
    return _clean.copy()


def _failure(report: ValidationReport, expectation: str, column: str):
    matches = [c for c in report.failures() if c.expectation == expectation and c.column == column]
    assert matches, f"no failed {expectation} on {column!r}; failures: {report.failures()}"
    return matches[0]


def test_clean_log_passes_and_builds_data_docs(log, cfg, tmp_path):
    report = validate_frame(log, cfg, docs_dir=tmp_path / "docs")

    assert report.success, report.summary()
    assert report.rows == len(log)
    assert report.failures() == ()
    assert len(report.summary().splitlines()) == 1
    assert (tmp_path / "docs" / "index.html").is_file()
    # every kind of check is present
    kinds = {c.expectation for c in report.checks}
    assert {
        "expect_table_row_count_to_be_between",
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_pair_values_a_to_be_greater_than_b",
    } <= kinds


def test_missing_label_column_is_named_and_other_checks_still_run(log, cfg):
    report = validate_frame(log.drop(columns=["purchase"]), cfg)

    assert not report.success
    assert [(c.expectation, c.column) for c in report.failures()] == [("expect_column_to_exist", "purchase")]
    assert "missing column 'purchase'" in report.summary()
    checked = {(c.expectation, c.column) for c in report.checks}
    assert ("expect_column_values_to_be_in_set", "click") in checked
    assert ("expect_column_pair_values_a_to_be_greater_than_b", "click>=add_to_cart") in checked


def test_purchase_without_click_names_both_columns_and_the_count(log, cfg):
    not_clicked = log.index[log["click"] == 0][:37]
    log.loc[not_clicked, "purchase"] = 1

    report = validate_frame(log, cfg)

    assert not report.success
    check = _failure(report, "expect_column_pair_values_a_to_be_greater_than_b", "click>=purchase")
    assert check.unexpected_count == 37
    assert "purchase" in check.detail and "click" in check.detail and "37" in check.detail
    assert len(report.failures()) == 1
    assert "purchase: 37 rows with purchase=1 but click!=1" in report.summary()


def test_label_value_outside_0_1_fails(log, cfg):
    log.loc[log.index[:3], "click"] = 2

    report = validate_frame(log, cfg)

    check = _failure(report, "expect_column_values_to_be_in_set", "click")
    assert check.unexpected_count == 3
    assert "'click': 3 rows" in report.summary()


def test_all_null_numeric_feature_fails(log, cfg):
    log["price"] = np.nan

    report = validate_frame(log, cfg)

    check = _failure(report, "expect_column_proportion_of_non_null_values_to_be_between", "price")
    assert check.unexpected_count == len(log)
    assert "price" in report.summary()


def test_numeric_feature_stored_as_text_fails(log, cfg):
    log["position"] = log["position"].astype(str)

    report = validate_frame(log, cfg)

    _failure(report, "expect_column_values_to_be_in_type_list", "position")
    assert "data.schema.categorical" in report.summary()  # the fix names the key to edit


def test_nan_in_binary_label_fails(log, cfg):
    log["add_to_cart"] = log["add_to_cart"].astype(float)
    log.loc[log.index[:4], "add_to_cart"] = np.nan

    report = validate_frame(log, cfg)

    check = _failure(report, "expect_column_values_to_not_be_null", "add_to_cart")
    assert check.unexpected_count == 4
    assert len(report.failures()) == 1  # a null is not also a funnel violation


def test_dwell_may_be_null_only_where_not_clicked(log, cfg):
    # The clean log, which passes, has no dwell time wherever click == 0.
    assert log.loc[log["click"] == 0, "dwell_seconds"].isna().sum() > 1000

    clicked = log.index[log["click"] == 1][:5]
    log.loc[clicked, "dwell_seconds"] = np.nan
    report = validate_frame(log, cfg)

    check = _failure(report, "expect_column_values_to_not_be_null", "dwell_seconds")
    assert check.unexpected_count == 5
    assert "click" in check.detail


def test_empty_log_fails_with_one_clear_message(log, cfg):
    report = validate_frame(log.iloc[:0], cfg)

    assert not report.success
    assert report.rows == 0
    assert [c.expectation for c in report.failures()] == ["expect_table_row_count_to_be_between"]
    assert "no rows" in report.summary()


def test_input_frame_is_not_modified(log, cfg, tmp_path):
    log.loc[log.index[:2], "click"] = 2
    before = log.copy()

    report = validate_frame(log, cfg, docs_dir=tmp_path / "docs")

    assert not report.success
    pd.testing.assert_frame_equal(log, before)


def test_timezone_aware_time_column_passes_and_is_left_as_is(log, cfg):
    log["ts"] = log["ts"].dt.tz_localize("UTC")

    report = validate_frame(log, cfg)

    assert report.success, report.summary()
    assert str(log["ts"].dt.tz) == "UTC"


def test_report_to_dict_is_json_serialisable(log, cfg):
    log.loc[log.index[log["click"] == 0][:7], "add_to_cart"] = 1
    report = validate_frame(log.drop(columns=["brand_id"]), cfg)

    data = json.loads(json.dumps(report.to_dict()))

    assert data["success"] is False
    assert data["rows"] == len(log)
    assert data["checks_total"] == len(report.checks) == len(data["checks"])
    assert data["checks_failed"] == 2
    failed = {c["column"]: c["unexpected_count"] for c in data["checks"] if not c["success"]}
    assert failed == {"brand_id": None, "click>=add_to_cart": 7}


def test_suite_follows_the_schema_not_fixed_column_names(log):
    """Renamed labels and tasks: the same checks, under the user's names."""
    raw = _raw_params()
    schema = raw["data"]["schema"]
    names = {label: f"my_{label}" for label in schema["labels"]}
    schema["labels"] = list(names.values())
    schema["truth"] = {}
    for task in raw["tasks"]:
        task["label"] = names[task["label"]]
        if "implies" in task:
            task["implies"] = names[task["implies"]]
        if "condition" in task:
            task["condition"]["column"] = names[task["condition"]["column"]]
    raw["validation"]["columns"] = {names.get(c, c): r for c, r in raw["validation"]["columns"].items()}
    cfg = parse_config(raw)
    renamed = log.rename(columns=names)
    renamed.loc[renamed.index[renamed["my_click"] == 0][:11], "my_purchase"] = 1

    columns = {e.column for e in build_suite(cfg).expectations if hasattr(e, "column")}
    report = validate_frame(renamed, cfg)

    assert "click" not in columns and set(names.values()) <= columns
    check = _failure(report, "expect_column_pair_values_a_to_be_greater_than_b", "my_click>=my_purchase")
    assert check.unexpected_count == 11


def test_importing_the_module_does_not_import_great_expectations():
    code = "import sys, mtl.data.contracts.validation; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PARAMS.parent)


@pytest.mark.parametrize("content,message", [
    ("- type: expect_column_values_to_be_inset\n  kwargs: {column: device, value_set: [ios]}\n",
     "expectation 1: unknown expectation type 'expect_column_values_to_be_inset'; did you mean "
     "expect_column_values_to_be_in_set?"),
    ("- type: expect_column_values_to_be_between\n  kwargs: {column: price, min_value: 0}\n"
     "- type: expect_column_values_to_be_in_set\n  kwargs: {column: device}\n",
     "expectation 2 (expect_column_values_to_be_in_set): invalid kwargs"),
    ("- type: expect_column_values_to_be_between\n  kwargs: {column: price}\n  severity: fatal\n",
     "severity must be critical or warning"),
])
def test_a_mistake_in_the_expectations_file_names_the_entry(tmp_path, content, message):
    from mtl.data.contracts.suite import ExpectationsFileError, load_expectations

    path = tmp_path / "expectations.yaml"
    path.write_text(content)
    with pytest.raises(ExpectationsFileError) as err:
        load_expectations(path)
    assert message in str(err.value)


def test_a_warning_severity_expectation_reports_without_failing(log, cfg, tmp_path):
    from mtl.data.contracts.suite import load_expectations

    path = tmp_path / "expectations.yaml"
    path.write_text("- type: expect_column_values_to_be_in_set\n  kwargs: {column: device, value_set: [ios]}\n"
                    "  severity: warning\n")
    report = validate_frame(log, cfg, extra=load_expectations(path))

    assert report.success, report.summary()
    (warning,) = report.warnings()
    assert warning.expectation == "expect_column_values_to_be_in_set" and warning.column == "device"
