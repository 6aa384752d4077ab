"""The champion as its users call it: raw rows over HTTP from `mlflow models serve`, and files
through `mtl score`. One small pipeline run registers the champion all the tests here share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from mtl import stagelist
from mtl.config import load_config
from mtl.paths import Paths
from mtl.scoring import SchemaMismatch, Scorer
from tests.airflow.live import free_port
from tests.conftest import SMALL_OVERRIDES, copy_project, set_params, wait_for_http

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]

MODEL = "mtl-ecommerce"
FAST = {"evaluation.baselines": False, "evaluation.bootstrap": 30, "train.epochs": 1,
        "gate.tasks.click.floor": 0.5, "gate.tasks.add_to_cart.floor": 0.5, "gate.tasks.purchase.floor": 0.5}


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A project whose registry holds a champion; yields (root, paths, env for its MLflow store)."""
    root = copy_project(tmp_path_factory.mktemp("serving") / "project")
    set_params(root, SMALL_OVERRIDES | FAST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MTL_PROJECT_DIR", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
        for stage in stagelist.functions().values():
            stage(cfg, paths)
        assert json.loads(paths.decision_file.read_text())["promote"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{paths.mlflow_db}", "MTL_PROJECT_DIR": str(root),
                # as in an activated virtualenv: `mlflow models serve` execs the env's uvicorn
                "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        yield root, paths, env


def _rows(paths: Paths, n: int = 300) -> pd.DataFrame:
    """Test rows as a caller has them, with ids the model never saw and missing values mixed in."""
    rows = pd.read_parquet(paths.test_raw_file).head(n).reset_index(drop=True)
    rows.loc[:9, "user_id"] = 10**9 + np.arange(10)  # unseen users
    rows.loc[5:14, "item_id"] = 10**9 + np.arange(10)  # unseen items (hashed into item_id's buckets)
    rows["price"] = rows["price"].astype("float64")
    rows.loc[20:24, "price"] = np.nan  # missing numerics: imputed as in training
    rows["device"] = rows["device"].astype(object)
    rows.loc[30:31, "device"] = None  # a missing category: the out-of-vocabulary slot
    rows.loc[32, "device"] = "smart_fridge"  # an unknown one: the same
    return rows


def _local(paths: Paths, rows: pd.DataFrame) -> pd.DataFrame:
    """In-process prediction with the pipeline's own transform and weights."""
    return Scorer.load(paths.transform_file, paths.model_file).predict(rows)


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _serve(env: dict, port: int, log):
    cmd = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "models", "serve", "-m",
           f"models:/{MODEL}@champion", "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_model_server_scores_raw_rows_like_in_process(champion, tmp_path):
    root, paths, env = champion
    rows = _rows(paths)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = _serve(env, port, log)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ping", proc, log_path, what="model server")

            # The raw columns as a caller sends them (JSON nulls for the missing values), plus one
            # the model does not read, which it ignores.
            sent = rows[Scorer.load(paths.transform_file, paths.model_file).input_columns].assign(request_id="r")
            payload = {"dataframe_split": json.loads(sent.to_json(orient="split", index=False))}
            status, body = _post(f"http://127.0.0.1:{port}/invocations", payload)
            assert status == 200, body
            served = pd.DataFrame(body["predictions"])
            local = _local(paths, rows)
            assert list(served.columns) == ["click", "add_to_cart", "purchase", "dwell"]
            pd.testing.assert_frame_equal(served, local, check_dtype=False, atol=1e-6, rtol=1e-6)
            assert served[["click", "add_to_cart", "purchase"]].apply(lambda s: s.between(0, 1).all()).all()

            # A renamed column: a client error that names it, not a score from made-up inputs.
            renamed = json.loads(sent.rename(columns={"user_id": "uid"}).to_json(orient="split", index=False))
            status, body = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": renamed})
            assert status == 400, body
            assert "user_id" in body["message"] and "uid" in body["message"], body
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)


def test_pyfunc_has_a_signature_and_example_and_names_missing_columns(champion):
    import mlflow

    root, paths, env = champion
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(env["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    cfg = load_config(root / "params.yaml")
    schema = cfg.data.schema
    assert model.metadata.get_input_schema().input_names() == [*schema.categorical, *schema.numeric]
    assert model.metadata.get_output_schema().input_names() == [t.name for t in cfg.tasks]
    assert model.metadata.saved_input_example_info is not None
    # In process, pyfunc predict on the raw test rows (ids and prices as ints or floats, nulls).
    rows = _rows(paths, 50)
    pd.testing.assert_frame_equal(model.predict(rows), _local(paths, rows), check_dtype=False, atol=1e-6)
    scorer = model.unwrap_python_model().scorer
    with pytest.raises(SchemaMismatch, match=r"missing column\(s\) \['item_id'\].*'item' -> 'item_id'"):
        scorer.predict(rows.rename(columns={"item_id": "item"}))
    bad = rows.assign(price=rows["price"].astype(object))
    bad.loc[3, "price"] = "12,50"
    with pytest.raises(SchemaMismatch, match=r"\['price'\].*not numbers.*12,50"):
        scorer.predict(bad)


def _mtl(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_mtl_score_streams_parquet_and_csv_with_the_champion(champion, tmp_path):
    root, paths, env = champion
    rows = _rows(paths, 5000)
    n = len(rows)  # the whole test split of the small log, about 2,200 rows
    local = _local(paths, rows)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    raw_before = (tmp_path / "rows.parquet").read_bytes()

    for name in ("rows.parquet", "rows.csv"):
        out = tmp_path / f"scores_of_{name}"
        proc = _mtl(["score", "--input", str(tmp_path / name), "--output", str(out), "--chunk-rows", "500"], env, root)
        assert proc.returncode == 0, proc.stderr
        assert f"scored {n:,} rows" in proc.stdout and f"models:/{MODEL}/1" in proc.stdout
        scores = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out)
        # scoring.keep first (keys to join back on), then one column per task, row for row
        assert list(scores.columns) == ["user_id", "item_id", "scenario", "click", "add_to_cart", "purchase", "dwell"]
        assert scores["user_id"].tolist() == rows["user_id"].tolist()
        pd.testing.assert_frame_equal(scores[local.columns], local, check_dtype=False, atol=1e-6)
        manifest = json.loads(out.with_name(out.name + ".json").read_text())
        assert manifest["model_version"] == "1" and manifest["rows"] == n and manifest["chunks"] == -(-n // 500)
    assert (tmp_path / "rows.parquet").read_bytes() == raw_before  # the input is only read


def test_mtl_score_names_a_renamed_column_and_writes_nothing(champion, tmp_path):
    root, paths, env = champion
    rows = _rows(paths, 100).rename(columns={"user_id": "customer_id"})
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    out = tmp_path / "scores.parquet"
    proc = _mtl(["score", "--input", str(tmp_path / "rows.parquet"), "--output", str(out), "--keep", ""], env, root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "missing column(s) ['user_id']" in proc.stderr and "'customer_id' -> 'user_id'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".scores*"))  # no partial output either

    proc = _mtl(["score", "--input", str(tmp_path / "nowhere.parquet"), "--output", str(out)], env, root)
    assert proc.returncode == 2 and "nowhere.parquet does not exist" in proc.stderr, proc.stderr
    proc = _mtl(["score", "--input", str(tmp_path / "rows.parquet"), "--output", str(out), "--model",
                 "models:/no-such-model@champion"], env, root)
    assert proc.returncode == 2 and "no-such-model" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
