"""Bring-your-own data: the user's files are found, read, ingested, and never modified."""

import hashlib

import pandas as pd
import pytest

from mtl.config import parse_config
from mtl.data.ingest.sources import SourceError, check_source_unchanged, ingest, source_files
from mtl.paths import Paths

USER = pd.DataFrame({
    "visitor": [1, 2, 3, 4], "sku": ["a", "b", "a", "c"], "amount": [1.0, 2.5, None, 4.0],
    "clicked": [1, 0, 1, 0], "ordered": [1, 0, 0, 0], "unrelated": ["x", "y", "z", "w"],
})


def user_config(source: str):
    return parse_config({
        "data": {"source": source, "schema": {"categorical": ["visitor", "sku"], "numeric": ["amount"],
                                              "labels": ["clicked", "ordered"]}},
        "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"},
                  {"name": "cvr", "label": "ordered", "type": "binary", "implies": "clicked"}],
    })


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_ingest_keeps_schema_columns_and_leaves_source_alone(tmp_path, fmt):
    src = tmp_path / f"log.{fmt}"
    USER.to_parquet(src) if fmt == "parquet" else USER.to_csv(src, index=False)
    before = md5(src)
    paths = Paths.at(tmp_path / "project")
    manifest = ingest(user_config(str(src)), paths)
    out = pd.read_parquet(paths.raw_file)
    assert list(out.columns) == ["visitor", "sku", "amount", "clicked", "ordered"]
    assert len(out) == 4 and manifest["rows"] == 4
    assert md5(src) == before


def test_folder_of_files(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    USER.iloc[:2].to_parquet(folder / "day1.parquet")
    USER.iloc[2:].to_parquet(folder / "day2.parquet")
    paths = Paths.at(tmp_path / "project")
    assert ingest(user_config(str(folder)), paths)["rows"] == 4


def test_missing_path_is_explained(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        source_files(user_config("nowhere.parquet").data, tmp_path)


def test_wrong_suffix_and_mixed_folder(tmp_path):
    (tmp_path / "log.json").write_text("{}")
    with pytest.raises(SourceError, match="expected .parquet or .csv"):
        source_files(user_config("log.json").data, tmp_path)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    USER.to_parquet(mixed / "a.parquet")
    USER.to_csv(mixed / "b.csv")
    with pytest.raises(SourceError, match="mixes parquet and CSV"):
        source_files(user_config("mixed").data, tmp_path)


def test_truncated_parquet_is_reported(tmp_path):
    src = tmp_path / "log.parquet"
    USER.to_parquet(src)
    src.write_bytes(src.read_bytes()[:50])
    with pytest.raises(SourceError, match="could not read parquet"):
        ingest(user_config(str(src)), Paths.at(tmp_path / "project"))


def test_changed_source_after_ingest_is_detected(tmp_path):
    from mtl.data.ingest.sources import materialise_raw

    src = tmp_path / "log.parquet"
    USER.to_parquet(src)
    cfg, paths = user_config(str(src)), Paths.at(tmp_path / "project")
    materialise_raw(cfg, paths)
    check_source_unchanged(cfg.data, paths)  # fine right after ingest
    USER.assign(clicked=1).to_parquet(src)
    with pytest.raises(SourceError, match="changed since it was ingested"):
        check_source_unchanged(cfg.data, paths)


def _dated_config(source: str, window_days):
    return parse_config({
        "data": {"source": source, "window_days": window_days,
                 "schema": {"categorical": ["visitor"], "numeric": [], "labels": ["clicked"], "time": "ts"}},
        "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"}],
    })


def test_window_keeps_the_newest_whole_days_of_every_file(tmp_path):
    """data.window_days: the newest N calendar days across the files, whatever the hour."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    for day in range(1, 6):  # 2026-03-01 .. 03-05, two rows a day
        pd.DataFrame({"visitor": [day, day], "clicked": [0, 1],
                      "ts": pd.to_datetime([f"2026-03-0{day} 00:10", f"2026-03-0{day} 23:50"])}
                     ).to_parquet(folder / f"day{day}.parquet")
    before = {p.name: md5(p) for p in folder.iterdir()}
    paths = Paths.at(tmp_path / "project")
    manifest = ingest(_dated_config(str(folder), 2), paths)
    out = pd.read_parquet(paths.raw_file)
    assert sorted(out["ts"].dt.day.unique()) == [4, 5] and len(out) == 4 and manifest["rows"] == 4
    assert manifest["window"] == {"days": 2, "from": "2026-03-04T00:00:00.000000000",
                                  "to": "2026-03-05T00:00:00.000000000"}
    assert {p.name: md5(p) for p in folder.iterdir()} == before  # read, never rewritten
    ingest(_dated_config(str(folder), None), paths)  # no window: every row
    assert len(pd.read_parquet(paths.raw_file)) == 10


def test_window_needs_a_time_column_and_files(tmp_path):
    with pytest.raises(ValueError, match="data.window_days: the synthetic log"):
        parse_config({"data": {"source": "synthetic", "window_days": 3, "schema": {
            "categorical": ["visitor"], "numeric": [], "labels": ["clicked"], "time": "ts"}},
            "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"}]})
    with pytest.raises(ValueError, match="needs data.schema.time"):
        parse_config({"data": {"source": "x.parquet", "window_days": 3, "schema": {
            "categorical": ["visitor"], "numeric": [], "labels": ["clicked"]}},
            "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"}]})
