"""Dataset adapters on tiny real samples of each public layout: rows, columns, splits, scenarios,
the presets in configs/, and the messages a user gets when the layout is wrong."""

import gzip
import json
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mtl.config import load_config, parse_config
from mtl.data.ingest.adapters import ADAPTERS
from mtl.data.ingest.sources import SourceError, check_source_unchanged, ingest, materialise_raw
from mtl.paths import Paths
from tests.conftest import REPO, SHARED_SAMPLES

pytestmark = pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="needs the shared dataset samples")


def lay_out(root, files: dict[str, str]):
    """Copy samples into ``root`` as {relative destination: sample name}; returns root."""
    for dest, sample in files.items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED_SAMPLES / sample, root / dest)
    return root


ALI_CCP = {f"ali_ccp_{s}_sample.csv": f"ali_ccp_{s}_sample.csv" for s in ("train", "val", "test")}
CENSUS = {f"census_income_{s}_sample.csv": f"census_income_{s}_sample.csv" for s in ("train", "val", "test")}
# The two variants of the AliExpress sample play two countries.
ALIEXPRESS = {
    "AliExpress_NL/train.csv": "aliexpress_train_sample.csv",
    "AliExpress_NL/test.csv": "aliexpress_test_sample.csv",
    "AliExpress_US/train.csv": "aliexpress_fuxictr_train.csv",
    "AliExpress_US/test.csv": "aliexpress_fuxictr_test.csv",
}


def preset(name, path, **overrides):
    return load_config(REPO / "configs" / f"{name}.yaml", {"data.path": str(path), **overrides})


def run_ingest(cfg, tmp_path):
    paths = Paths.at(tmp_path / "project")
    manifest = ingest(cfg, paths)
    return manifest, pd.read_parquet(paths.raw_file), paths


def sample_rows(*names):
    return sum(len(pd.read_csv(SHARED_SAMPLES / n)) for n in names)


# --------------------------------------------------------------------------- the three layouts


@pytest.mark.parametrize("name, layout, splits", [
    ("ali_ccp", ALI_CCP, {"train": 100, "validation": 50, "test": 50}),
    ("census_income", CENSUS, {"train": 80, "validation": 20, "test": 20}),
    ("aliexpress", ALIEXPRESS, {"train": 200, "test": 120}),
])
def test_preset_ingests_its_samples_with_every_schema_column(tmp_path, name, layout, splits):
    data = lay_out(tmp_path / "data", layout)
    cfg = preset(name, data)
    manifest, raw, _ = run_ingest(cfg, tmp_path)
    assert len(raw) == manifest["rows"] == sample_rows(*layout.values())
    assert list(raw.columns) == [*cfg.data.schema.required_columns(), "split"]
    assert raw["split"].value_counts().to_dict() == splits == manifest["splits"]
    assert manifest["adapter"] == name and len(manifest["files"]) == len(layout)
    # train rows come first, whatever the file names sort as
    assert raw["split"].iloc[0] == "train" and raw["split"].iloc[-1] == "test"
    for col in cfg.data.schema.numeric:
        assert raw[col].dtype == "float64", col
    for col in cfg.data.schema.labels:
        assert raw[col].dtype == "int64" and set(raw[col]) <= {0, 1}, col


def test_ali_ccp_keeps_the_field_ids_as_column_names(tmp_path):
    _, raw, _ = run_ingest(preset("ali_ccp", lay_out(tmp_path / "d", ALI_CCP)), tmp_path)
    expected = pd.read_csv(SHARED_SAMPLES / "ali_ccp_train_sample.csv")
    train = raw[raw["split"] == "train"].reset_index(drop=True)
    pd.testing.assert_series_equal(train["205"], expected["205"])
    pd.testing.assert_series_equal(train["D508"], expected["D508"])
    assert raw["101"].dtype == "int64"


def test_census_columns_become_snake_case(tmp_path):
    _, raw, _ = run_ingest(preset("census_income", lay_out(tmp_path / "d", CENSUS)), tmp_path)
    assert {"class_of_worker", "marital_status", "divdends_from_stocks", "income"} <= set(raw.columns)
    expected = pd.read_csv(SHARED_SAMPLES / "census_income_test_sample.csv")
    test = raw[raw["split"] == "test"].reset_index(drop=True)
    assert test["marital_status"].tolist() == expected["marital status"].tolist()


def test_aliexpress_countries_become_the_scenario(tmp_path):
    _, raw, _ = run_ingest(preset("aliexpress", lay_out(tmp_path / "d", ALIEXPRESS)), tmp_path)
    counts = raw.groupby(["country", "split"]).size().to_dict()
    assert counts == {("NL", "train"): 100, ("NL", "test"): 20, ("US", "train"): 100, ("US", "test"): 100}


@pytest.mark.parametrize("layout, country", [
    ({"AliExpress_NL/train.csv": "aliexpress_train_sample.csv",
      "AliExpress_NL/test.csv": "aliexpress_test_sample.csv"}, "NL"),
    ({"nl_train.csv": "aliexpress_train_sample.csv", "nl_test.csv": "aliexpress_test_sample.csv",
      "us_train.csv": "aliexpress_fuxictr_train.csv", "us_test.csv": "aliexpress_fuxictr_test.csv"}, None),
    ({"train.csv": "aliexpress_train_sample.csv", "test.csv": "aliexpress_test_sample.csv"}, "all"),
])
def test_aliexpress_country_from_folder_or_word(tmp_path, layout, country):
    data = lay_out(tmp_path / "d", layout)
    # pointing at the country folder itself works as well as at its parent
    path = data / "AliExpress_NL" if country == "NL" else data
    _, raw, _ = run_ingest(preset("aliexpress", path), tmp_path)
    expected = {country} if country else {"NL", "US"}
    assert set(raw["country"]) == expected


def test_compressed_csv_is_read(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    for dest, sample in CENSUS.items():
        with gzip.open(data / (dest + ".gz"), "wb") as fh:
            fh.write((SHARED_SAMPLES / sample).read_bytes())
    _, raw, _ = run_ingest(preset("census_income", data), tmp_path)
    assert len(raw) == 120


def test_many_blocks_stream_into_one_consistent_file(tmp_path, monkeypatch):
    from mtl.data.ingest.adapters import base

    monkeypatch.setattr(base, "CSV_BLOCK_BYTES", 4096)  # a few rows per block
    data = lay_out(tmp_path / "d", ALIEXPRESS)
    _, raw, paths = run_ingest(preset("aliexpress", data), tmp_path)
    assert len(raw) == 320
    # numerical_58 holds only integers in these files: declared float64 all the same
    assert pq.read_schema(paths.raw_file).field("numerical_58").type == "double"


def test_source_unchanged_check_sees_an_edited_file(tmp_path):
    data = lay_out(tmp_path / "d", ALI_CCP)
    cfg, paths = preset("ali_ccp", data), Paths.at(tmp_path / "project")
    materialise_raw(cfg, paths)
    check_source_unchanged(cfg.data, paths)
    with open(data / "ali_ccp_test_sample.csv", "a") as fh:
        fh.write("1,0" + ",1" * 23 + ",0.5" * 8 + "\n")
    with pytest.raises(SourceError, match="changed since it was ingested"):
        check_source_unchanged(cfg.data, paths)


def test_source_files_are_never_modified(tmp_path):
    data = lay_out(tmp_path / "d", ALIEXPRESS)
    before = {p: p.read_bytes() for p in data.rglob("*.csv")}
    run_ingest(preset("aliexpress", data), tmp_path)
    assert {p: p.read_bytes() for p in data.rglob("*.csv")} == before


# --------------------------------------------------------------------------- wrong layouts


def test_missing_path_names_the_key_and_the_layout(tmp_path):
    with pytest.raises(SourceError) as err:
        run_ingest(preset("ali_ccp", tmp_path / "nowhere"), tmp_path)
    msg = str(err.value)
    assert "data.path" in msg and "does not exist" in msg and "ali_ccp_train.csv" in msg


def test_folder_without_the_expected_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"ali_ccp: found no CSV files.*\*train\*"):
        run_ingest(preset("ali_ccp", empty), tmp_path)
    only_train = lay_out(tmp_path / "train_only", {"ali_ccp_train.csv": "ali_ccp_train_sample.csv"})
    with pytest.raises(SourceError, match=r"no test file .*found ali_ccp_train.csv"):
        run_ingest(preset("ali_ccp", only_train), tmp_path)


def test_file_of_no_split_is_named(tmp_path):
    data = lay_out(tmp_path / "d", {**CENSUS, "census_income_all.csv": "census_income_val_sample.csv"})
    with pytest.raises(SourceError, match="cannot tell which split census_income_all.csv"):
        run_ingest(preset("census_income", data), tmp_path)


def test_wrong_header_lists_missing_and_found_columns(tmp_path):
    # census files where Ali-CCP ones are expected
    data = lay_out(tmp_path / "d", {"ali_ccp_train.csv": "census_income_train_sample.csv",
                                    "ali_ccp_test.csv": "census_income_test_sample.csv"})
    with pytest.raises(SourceError) as err:
        run_ingest(preset("ali_ccp", data), tmp_path)
    msg = str(err.value)
    assert msg.startswith("ali_ccp: ") and "lacks the column(s) 101" in msg
    assert "with columns click, purchase, 101" in msg and "found age, class of worker" in msg


def test_aliexpress_country_without_test_file(tmp_path):
    layout = dict(ALIEXPRESS)
    del layout["AliExpress_US/test.csv"]
    with pytest.raises(SourceError, match=r"country US has no test file"):
        run_ingest(preset("aliexpress", lay_out(tmp_path / "d", layout)), tmp_path)


def test_aliexpress_files_of_no_country_among_countries(tmp_path):
    layout = {**ALIEXPRESS, "extra/train.csv": "aliexpress_train_sample.csv",
              "extra/test.csv": "aliexpress_test_sample.csv"}
    with pytest.raises(SourceError, match=r"cannot tell the country of .*extra"):
        run_ingest(preset("aliexpress", lay_out(tmp_path / "d", layout)), tmp_path)


def test_bad_value_deep_in_a_file_names_file_and_column(tmp_path, monkeypatch):
    from mtl.data.ingest.adapters import base

    monkeypatch.setattr(base, "CSV_BLOCK_BYTES", 2048)
    data = lay_out(tmp_path / "d", ALI_CCP)
    train = data / "ali_ccp_train_sample.csv"
    lines = train.read_text().splitlines()
    lines[-1] = lines[-1].replace("0,0,1,", "0,0,x1,", 1)  # column "101" of the last row
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"ali_ccp: could not read .*ali_ccp_train_sample.csv \(column '101'\)"):
        run_ingest(preset("ali_ccp", data), tmp_path)
    assert not (tmp_path / "project" / "data" / "01_raw" / "impressions.parquet").exists()


# --------------------------------------------------------------------------- the generic adapter


def files_config(path, **schema):
    schema = {"categorical": ["user"], "numeric": ["amount"], "labels": ["clicked"]} | schema
    return parse_config({"data": {"source": "files", "path": str(path), "schema": schema},
                         "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"}]})


def test_files_adapter_takes_the_split_from_file_names(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    pd.DataFrame({"user": [1, 2], "amount": [1, 2], "clicked": [0, 1]}).to_csv(data / "train.csv", index=False)
    pd.DataFrame({"user": ["a"], "amount": [0.5], "clicked": [1]}).to_csv(data / "test.csv", index=False)
    manifest, raw, _ = run_ingest(files_config(data), tmp_path)
    assert manifest["splits"] == {"test": 1, "train": 2}
    # CSV: ids as text in every file, numeric features as float64
    assert raw["user"].tolist() == ["a", "1", "2"] and raw["amount"].dtype == "float64"


def test_files_adapter_keeps_a_split_column_and_unifies_parquet_types(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    pd.DataFrame({"user": [1, 2], "amount": pd.array([1, 2], dtype="int32"), "clicked": [0, 1],
                  "split": ["train", "test"]}).to_parquet(data / "a.parquet")
    pd.DataFrame({"user": ["x"], "amount": [0.5], "clicked": [1], "split": ["train"]}).to_parquet(data / "b.parquet")
    _, raw, paths = run_ingest(files_config(data), tmp_path)
    schema = pq.read_schema(paths.raw_file)
    assert str(schema.field("amount").type) == "double" and str(schema.field("user").type) == "string"
    assert raw["split"].tolist() == ["train", "test", "train"]


def test_files_adapter_type_clash_names_both_files(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    pd.DataFrame({"user": [1], "amount": [1.0], "clicked": [1]}).to_parquet(data / "a.parquet")
    pd.DataFrame({"user": [2], "amount": [1.0], "clicked": ["yes"]}).to_parquet(data / "b.parquet")
    with pytest.raises(SourceError, match=r"column 'clicked' is int64 in .*a.parquet but (large_)?string in .*b.parquet"):
        run_ingest(files_config(data), tmp_path)


def test_bare_path_source_is_the_files_adapter(tmp_path):
    src = tmp_path / "log.csv"
    pd.DataFrame({"user": [1, 2], "amount": [1, None], "clicked": [0, 1]}).to_csv(src, index=False)
    cfg = parse_config({"data": {"source": str(src), "schema": {"categorical": ["user"], "numeric": ["amount"],
                                                                "labels": ["clicked"]}},
                        "tasks": [{"name": "ctr", "label": "clicked", "type": "binary"}]})
    manifest, raw, _ = run_ingest(cfg, tmp_path)
    assert manifest["adapter"] == "files" and "splits" not in manifest and len(raw) == 2


# --------------------------------------------------------------------------- the registry


def test_registry_lists_every_adapter_and_imports_nothing_heavy():
    assert {"files", "ali_ccp", "aliexpress", "census_income", "m5"} <= set(ADAPTERS)
    code = ("import sys, json; import mtl.config; from mtl.data.ingest.adapters import ADAPTERS; "
            "print(json.dumps([m for m in ('pyarrow', 'pandas', 'torch') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout) == []


def test_presets_mirror_params_yaml_sections():
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name in ("ali_ccp", "aliexpress", "census_income", "m5"):
        raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        assert raw["data"]["source"] == name and raw["data"]["path"].startswith("data/external/")
        # dvc.yaml tracks these keys as params: a preset lacking one stops `dvc repro`
        assert set(raw) == set(params) and set(raw["data"]) == set(params["data"]), name
        for section in ("features", "model", "train", "evaluation", "gate"):
            assert set(raw[section]) == set(params[section]), (name, section)
        assert set(raw["data"]["split"]) == set(params["data"]["split"]), name
        cfg = load_config(REPO / "configs" / f"{name}.yaml")
        assert set(cfg.gate.tasks) == {t.name for t in cfg.tasks}
