"""Batch scoring and the scoring DAG's day logic, on a tiny fitted transform and an untrained model:
chunking, order, kept columns, errors that name columns, and outputs that are never half-written."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from mtl.config import parse_config
from mtl.data import features
from mtl.models import get_architecture
from mtl.models.layers import InputSpec
from mtl.scoring import SchemaMismatch, Scorer, check_columns
from mtl.serving.batch import ScoringError, score_file
from mtl.serving.daily import day_input, day_output, run_day

CFG = parse_config({
    "data": {"schema": {"categorical": ["user", "surface"], "numeric": ["price"], "labels": ["click", "dwell"],
                        "scenario": "surface"}},
    "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
              {"name": "dwell", "label": "dwell", "type": "regression", "condition": {"column": "click", "equals": 1}}],
    "features": {"columns": {"user": {"hash_buckets": 8}}},
    "model": {"architecture": "shared_bottom", "embedding_dim": 4},
})


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "request": np.arange(n),
        "user": rng.integers(0, 50, n),
        "surface": rng.choice(["home", "search"], n),
        "price": rng.gamma(2.0, 5.0, n),
        "click": rng.integers(0, 2, n),
        "dwell": rng.gamma(2.0, 10.0, n),
    })


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    import torch

    torch.manual_seed(0)
    t = features.fit(_rows(500), CFG)
    spec = InputSpec.from_tasks(t.cardinalities, t.n_numeric, t.tasks, t.cat_inputs.index("surface"))
    return Scorer(t, get_architecture("shared_bottom")(spec, CFG.model).eval())


def test_chunks_keep_rows_in_order_and_match_one_pass(scorer, tmp_path):
    rows = _rows(2_500, seed=1)
    rows.loc[:9, "user"] = 10_000 + np.arange(10)  # unseen ids: hashed buckets, no error
    rows.loc[10:14, "price"] = np.nan  # imputed
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    result = score_file(scorer, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=1_000, keep=["request"])
    assert (result.rows, result.chunks) == (2_500, 3)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["request", "ctr", "dwell"]
    assert out["request"].tolist() == list(range(2_500))
    pd.testing.assert_frame_equal(out[["ctr", "dwell"]], scorer.predict(rows), atol=1e-6)
    manifest = json.loads((tmp_path / "out.parquet.json").read_text())
    assert manifest["rows"] == 2_500 and manifest["tasks"] == ["ctr", "dwell"] and manifest["keep"] == ["request"]


def test_a_folder_of_csv_files_scores_as_one_input(scorer, tmp_path):
    rows = _rows(900, seed=2)
    (tmp_path / "day").mkdir()
    rows.iloc[:400].to_csv(tmp_path / "day" / "part-0.csv", index=False)
    rows.iloc[400:].to_csv(tmp_path / "day" / "part-1.csv", index=False)
    (tmp_path / "day" / ".part-2.csv.tmp").write_text("still being written")
    score_file(scorer, tmp_path / "day", tmp_path / "out.csv", chunk_rows=300)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), scorer.predict(rows), atol=1e-6)


def test_a_failure_midway_leaves_the_earlier_output_and_no_partial_file(scorer, tmp_path):
    (tmp_path / "day").mkdir()
    _rows(300).to_parquet(tmp_path / "day" / "a.parquet", index=False)
    score_file(scorer, tmp_path / "day", tmp_path / "out.parquet")
    before = (tmp_path / "out.parquet").read_bytes()
    bad = _rows(300)
    bad["price"] = bad["price"].astype(str)  # prices exported as text, one of them not a number,
    bad.loc[7, "price"] = "n/a"  # found only when that file's rows are scored
    bad.to_parquet(tmp_path / "day" / "b.parquet", index=False)
    with pytest.raises(SchemaMismatch, match=r"\['price'\].*'n/a'"):
        score_file(scorer, tmp_path / "day", tmp_path / "out.parquet", chunk_rows=100)
    assert (tmp_path / "out.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day", "out.parquet", "out.parquet.json"]


def test_schema_problems_are_named_before_anything_is_written(scorer, tmp_path):
    rows = _rows(50)
    rows.rename(columns={"surface": "surface_name"}).to_parquet(tmp_path / "renamed.parquet", index=False)
    with pytest.raises(SchemaMismatch, match=r"missing column\(s\) \['surface'\].*'surface_name' -> 'surface'"):
        score_file(scorer, tmp_path / "renamed.parquet", tmp_path / "out.parquet")
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(SchemaMismatch, match=r"\['order_id'\] asked to be kept"):
        score_file(scorer, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=["order_id"])
    with pytest.raises(ScoringError, match="names of score columns"):
        score_file(scorer, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=["ctr"])
    with pytest.raises(ScoringError, match="is the input"):
        score_file(scorer, tmp_path / "in.parquet", tmp_path / "in.parquet")
    with pytest.raises(ScoringError, match="unknown format"):
        score_file(scorer, tmp_path / "in.parquet", tmp_path / "out.xlsx")
    assert not list(tmp_path.glob("out*"))


def test_check_columns_suggests_the_rename():
    check_columns(["a", "b", "c"], ["a", "b"])  # extra columns are fine
    with pytest.raises(SchemaMismatch, match=r"\['user_id'\].*'userid' -> 'user_id'"):
        check_columns(["userid", "price", "request"], ["user_id", "price"])
    with pytest.raises(SchemaMismatch, match=r"\['item_id'\].*'sku' -> 'item_id'"):  # one out, one in
        check_columns(["user_id", "sku"], ["user_id", "item_id"])
    with pytest.raises(SchemaMismatch) as err:
        check_columns(["x"], ["user_id", "item_id"])
    assert "renamed" not in str(err.value)  # no guess when nothing resembles the missing columns


def test_the_day_a_run_scores():
    start = datetime(2026, 11, 29, tzinfo=timezone.utc)
    assert run_day(None, start) == "2026-11-29"  # the day the data interval covers
    assert run_day("2026-10-01", start) == "2026-10-01"  # the form wins
    assert run_day(None, None, now=datetime(2026, 11, 30, 3, tzinfo=timezone.utc)) == "2026-11-29"
    for bad in ("2026-02-30", "29/11/2026", "yesterday"):
        with pytest.raises(ValueError, match="YYYY-MM-DD|day is out of range"):
            run_day(bad, start)


def test_the_days_input_and_output(tmp_path):
    pattern = "to_score/{day}"
    assert day_input(tmp_path, pattern, "2026-11-29") is None
    (tmp_path / "to_score").mkdir()
    (tmp_path / "to_score" / "2026-11-29.csv").write_text("a\n1\n")
    assert day_input(tmp_path, pattern, "2026-11-29") == tmp_path / "to_score" / "2026-11-29.csv"
    (tmp_path / "to_score" / "2026-11-30").mkdir()
    (tmp_path / "to_score" / "2026-11-30" / "part.parquet.tmp").write_text("")
    assert day_input(tmp_path, pattern, "2026-11-30") is None  # only a file still being written
    (tmp_path / "to_score" / "2026-11-30" / "part.parquet").write_text("")
    assert day_input(tmp_path, pattern, "2026-11-30") == tmp_path / "to_score" / "2026-11-30"
    assert day_output(tmp_path, "out/{day}.parquet", "2026-11-30") == tmp_path / "out" / "2026-11-30.parquet"
    assert day_output(tmp_path, "/abs/{day}.csv", "2026-11-30").as_posix() == "/abs/2026-11-30.csv"


def test_a_kept_column_that_changes_type_between_csv_chunks(scorer, tmp_path):
    rows = _rows(600).astype({"request": object})
    rows.loc[450:, "request"] = [f"r-{i}" for i in range(150)]  # numbers for two chunks, then text
    rows.to_csv(tmp_path / "in.csv", index=False)
    score_file(scorer, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=200, keep=["request"])
    out = pd.read_csv(tmp_path / "out.csv", dtype={"request": str})
    assert out["request"].tolist() == [str(r) for r in rows["request"]] and len(out) == 600
    with pytest.raises(ScoringError, match=r"\['request'\] change type between chunks"):
        score_file(scorer, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=200, keep=["request"])
    assert not (tmp_path / "out.parquet").exists()


def test_a_quantile_task_is_served_with_the_scale_saved_beside_the_model(tmp_path):
    """The conformal adjustment chosen on validation travels in the model file (under its checksum)
    and the scorer applies it to that task only: what `mtl score`, the served model and the
    evaluation read."""
    import torch

    from mtl.training.checkpoint import load_model, save_model

    cfg = parse_config({**CFG.model_dump(mode="json", include={"data", "features", "model"}), "tasks": [
        {"name": "ctr", "label": "click", "type": "binary"},
        {"name": "dwell_p90", "label": "dwell", "type": "regression", "loss": "pinball", "quantile": 0.9}]})
    torch.manual_seed(0)
    t = features.fit(_rows(500), cfg)
    spec = InputSpec.from_tasks(t.cardinalities, t.n_numeric, t.tasks, t.cat_inputs.index("surface"))
    model = get_architecture("shared_bottom")(spec, cfg.model).eval()
    save_model(tmp_path / "plain.pt", model, spec, cfg.model)
    save_model(tmp_path / "calibrated.pt", model, spec, cfg.model, {"dwell_p90": {"c": 0.5, "m": 2.0, "coverage": [0.7, 0.9]}})
    rows = _rows(50, seed=3)
    plain, calibrated = (Scorer(t, load_model(tmp_path / f"{n}.pt")).predict(rows) for n in ("plain", "calibrated"))
    f = plain["dwell_p90"].to_numpy()
    assert np.allclose(calibrated["dwell_p90"], f + 0.5 * (np.abs(f) + 2.0))
    assert np.array_equal(calibrated["ctr"], plain["ctr"])
    assert load_model(tmp_path / "plain.pt").calibration == {}
