"""Data tests: the data contract rejects a corpus of broken inputs, each with its own message.

Every case starts from a clean synthetic log, breaks it the way real exports break, and goes the
way a user's file goes: written to disk, ingested by the `generate` stage (file-level damage stops
there), then validated by what the `validate` stage runs (GX suite, leakage, drift against a
champion's training statistics).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl.config import parse_config
from mtl.data import features
from mtl.data.ingest import synthetic
from mtl.data.ingest.sources import SourceError, ingest
from mtl.data.contracts.report import ValidationReport
from mtl.data.contracts.validation import validate_file
from mtl.paths import Paths

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"rows": 20_000, "users": 2_000, "items": 1_000, "categories": 20, "brands": 50}


def _raw(source: str, **extra_schema) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["synthetic"].update(SMALL)
    raw["data"]["source"] = source
    for key, more in extra_schema.items():
        raw["data"]["schema"][key] = raw["data"]["schema"][key] + more
    return raw


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return synthetic.generate(parse_config(_raw("synthetic")).data.synthetic)


@pytest.fixture(scope="module")
def champion(clean) -> dict:
    """What a champion trained on the clean log saved: its transform's statistics."""
    t = features.fit(clean, parse_config(_raw("synthetic")))
    return {"name": "mtl-ecommerce version 1", "stats": t.stats, "categorical": t.categorical}


def check(tmp_path: Path, write, champion: dict, **extra_schema) -> ValidationReport | str:
    """Write a batch with ``write(path)`` and run it through ingest and validation: the report,
    or the message ingest stopped with."""
    src = tmp_path / "incoming"
    src.mkdir()
    path = write(src)
    cfg = parse_config(_raw(str(path), **extra_schema))
    paths = Paths.at(tmp_path / "project")
    try:
        ingest(cfg, paths)
    except SourceError as err:
        assert not paths.raw_file.exists()  # nothing half-written is left for a later stage
        return str(err)
    return validate_file(paths.raw_file, cfg, reference=champion, expectations=ROOT / cfg.validation.expectations)


def parquet(df: pd.DataFrame):
    def write(folder: Path) -> Path:
        df.to_parquet(folder / "batch.parquet", index=False)
        return folder / "batch.parquet"
    return write


def failed(report: ValidationReport) -> str:
    assert isinstance(report, ValidationReport), report
    assert not report.success, report.summary()
    return "\n".join(c.detail for c in report.failures())


def test_a_clean_batch_passes_without_warnings(tmp_path, clean, champion):
    report = check(tmp_path, parquet(clean), champion)

    assert report.success, report.summary()
    assert report.warnings() == ()
    kinds = {c.expectation for c in report.checks}
    assert {"expect_impression_keys_to_be_unique", "expect_column_values_to_be_between",
            "expect_column_unique_value_count_to_be_between", "expect_column_max_to_be_between",
            "expect_column_values_to_be_in_set", "leakage", "drift.psi", "drift.label_shift",
            "drift.new_category_rate"} <= kinds
    assert report.reference["name"] == "mtl-ecommerce version 1"


def _drop(df, col):
    return df.drop(columns=[col])


def _retype(df):
    return df.assign(price=df["price"].map(lambda p: f"{p:.2f} EUR"))


def _all_null(df):
    return df.assign(brand_id=pd.Series(pd.NA, index=df.index, dtype="Int64"))


def _nan_labels(df):
    out = df.copy()
    out.loc[out.index[:37], "click"] = np.nan
    return out


def _label_two(df):
    out = df.copy()
    out.loc[out.index[:5], "add_to_cart"] = 2
    return out


def _purchase_without_click(df):
    out = df.copy()
    rows = out.index[out["click"] == 0][:9]
    out.loc[rows, "purchase"] = 1
    return out


def _negative_price(df):
    out = df.copy()
    out.loc[out.index[:12], "price"] = -4.99
    return out


def _duplicated(df):
    return pd.concat([df, df.iloc[:25]], ignore_index=True)


def _future(df):
    out = df.copy()
    out.loc[out.index[:3], "ts"] = pd.Timestamp(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)) + pd.Timedelta(days=3)
    return out


def _too_few(df):
    return df.iloc[:400]


def _new_device(df):
    out = df.copy()
    out.loc[out.index[:50], "device"] = "smart_tv"
    return out


def _drifted(df):
    # the price feed switched currencies: every price x3
    return df.assign(price=df["price"] * 3)


# (name, how the batch is broken and written, what the message must say)
CASES = [
    ("missing column", lambda df: parquet(_drop(df, "brand_id")), ["missing column 'brand_id'", "data.schema.categorical"]),
    ("wrong dtype", lambda df: parquet(_retype(df)), ["'price' has", "declared numeric"]),
    ("all-null column", lambda df: parquet(_all_null(df)), ["'brand_id': null on all 20,000 rows"]),
    ("NaN labels", lambda df: parquet(_nan_labels(df)), ["'click': 37 rows have no label"]),
    ("a label of 2", lambda df: parquet(_label_two(df)), ["'add_to_cart': 5 rows have a value other than 0 or 1"]),
    ("purchase without click", lambda df: parquet(_purchase_without_click(df)),
     ["purchase: 9 rows with purchase=1 but click!=1", "funnel"]),
    ("negative price", lambda df: parquet(_negative_price(df)), ["'price': 12 rows are outside [0, inf]"]),
    ("duplicated rows", lambda df: parquet(_duplicated(df)),
     ["50 rows share the same key (user_id,item_id,scenario,ts, validation.keys)"]),
    ("timestamps in the future", lambda df: parquet(_future(df)), ["time column 'ts' reaches", "clock or timezone bug"]),
    ("too few rows", lambda df: parquet(_too_few(df)), ["the log has 400 rows, fewer than validation.min_rows (1,000)"]),
    ("unknown device (user expectation)", lambda df: parquet(_new_device(df)),
     ["expectations.yaml #1: expect_column_values_to_be_in_set on device failed (50 unexpected rows)"]),
    ("drifted batch", lambda df: parquet(_drifted(df)),
     ["'price' drifted: PSI", "the failure level is 0.25", "mtl-ecommerce version 1"]),
]


@pytest.mark.parametrize("name,make,expected", CASES, ids=[c[0] for c in CASES])
def test_a_broken_batch_is_rejected_with_a_specific_message(tmp_path, clean, champion, name, make, expected):
    message = failed(check(tmp_path, make(clean), champion))

    for part in expected:
        assert part in message, f"{name}: {part!r} not in:\n{message}"


def test_a_leaked_label_column_is_rejected(tmp_path, clean, champion):
    """An order value only purchases have, declared as a feature: the leak is named."""
    leaked = clean.assign(order_value=np.where(clean["purchase"] == 1, clean["price"], np.nan))

    message = failed(check(tmp_path, parquet(leaked), champion, numeric=["order_value"]))

    assert "feature 'order_value' alone predicts task 'purchase' with AUC 1.0000" in message
    assert "remove it from data.schema" in message


def test_an_empty_file_is_named(tmp_path, clean, champion):
    def write(folder):
        (folder / "batch.csv").write_bytes(b"")
        return folder / "batch.csv"

    message = check(tmp_path, write, champion)

    assert isinstance(message, str) and "batch.csv is empty (0 bytes)" in message


def test_a_header_only_csv_has_no_rows(tmp_path, clean, champion):
    def write(folder):
        clean.iloc[:0].to_csv(folder / "batch.csv", index=False)
        return folder / "batch.csv"

    assert "the log has no rows" in failed(check(tmp_path, write, champion))


def test_a_truncated_parquet_file_is_named(tmp_path, clean, champion):
    def write(folder):
        clean.to_parquet(folder / "batch.parquet", index=False)
        data = (folder / "batch.parquet").read_bytes()
        (folder / "batch.parquet").write_bytes(data[: len(data) // 2])  # a copy cut off midway
        return folder / "batch.parquet"

    message = check(tmp_path, write, champion)

    assert isinstance(message, str) and "could not read parquet data from" in message and "complete" in message


def test_a_csv_with_the_wrong_delimiter_is_named(tmp_path, clean, champion):
    def write(folder):
        clean.to_csv(folder / "batch.csv", index=False, sep=";")
        return folder / "batch.csv"

    message = check(tmp_path, write, champion)

    assert isinstance(message, str) and "is not comma-separated" in message and "semicolons (';')" in message


def test_a_mildly_drifted_batch_passes_with_a_warning(tmp_path, clean, champion):
    """Half the Android traffic moved to iOS: a moderate shift of one feature, not a new population."""
    batch = clean.copy()
    android = batch.index[batch["device"] == "android"]
    batch.loc[android[::2], "device"] = "ios"

    report = check(tmp_path, parquet(batch), champion)

    assert report.success, report.summary()
    (warning,) = report.warnings()
    assert warning.expectation == "drift.psi" and warning.column == "device"
    assert 0.1 <= warning.value < 0.25
    assert "WARNING: 'device' drifted" in report.summary()


def test_a_shifted_label_rate_fails_per_scenario(tmp_path, clean, champion):
    """Clicks stopped being logged on the search surface: the click rate there collapses."""
    batch = clean.copy()
    search = batch["scenario"] == "search"
    batch.loc[search, ["click", "add_to_cart", "purchase"]] = 0
    batch.loc[search, "dwell_seconds"] = np.nan

    message = failed(check(tmp_path, parquet(batch), champion))

    assert "task 'click' in scenario 'search': label rate 0.000" in message
    assert "validation.drift.label_shift" in message


def test_new_items_raise_the_new_category_rate(tmp_path, clean, champion):
    batch = clean.copy()
    batch.loc[batch.index[: len(batch) // 2], "item_id"] += 1_000_000  # half the traffic on unseen items

    report = check(tmp_path, parquet(batch), champion)

    (check_,) = [c for c in report.failures() if c.expectation == "drift.new_category_rate"]
    assert check_.column == "item_id" and check_.value > 0.2
    assert "never saw in training" in check_.detail


def test_without_a_champion_drift_is_skipped_and_said(tmp_path, clean):
    report = check(tmp_path, parquet(clean), {"skipped": "no champion of model 'm' yet (the first run)"})

    assert report.success
    assert not any(c.expectation.startswith("drift.") for c in report.checks)
    assert "drift not checked: no champion" in report.summary()

