"""The whole chain through `dvc repro`, as a user runs it on a laptop."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from mtl import tracking
from mtl.codedeps import code_deps
from mtl.config import SyntheticConfig
from mtl.data.ingest import synthetic
from mtl.paths import Paths
from mtl.stagelist import STAGES
from tests.conftest import chain, ran, set_params
from tests.e2e.test_stages import run_chain

pytestmark = pytest.mark.slow


def repro(root, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *args], cwd=root, capture_output=True, text=True,
                          env=_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc repro failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _env():
    import os

    from mtl.pipeline import _env as pipeline_env

    return pipeline_env() | {"MTL_PROJECT_DIR": os.environ["MTL_PROJECT_DIR"]}


def test_repro_runs_the_chain_once_and_reruns_only_what_changed(project):
    first = repro(project)
    assert ran(first.stdout) == chain()
    paths = Paths.at(project)
    metrics = json.loads(paths.metrics_file.read_text())
    assert set(metrics["tasks"]) == {"click", "add_to_cart", "purchase", "dwell"}
    assert metrics["tasks"]["click"]["oracle_auc"] > 0.7
    assert (paths.data_docs_dir / "index.html").is_file()
    assert json.loads(paths.decision_file.read_text())["summary"]

    again = repro(project)
    assert ran(again.stdout) == []
    _commit(project, "the first run")  # dvc.lock and the metrics and plots files, as the README says
    _an_experiment_trains_and_evaluates_but_never_promotes(project)

    set_params(project, {"train.epochs": 1})  # both models train with the train section
    partial = repro(project)
    assert ran(partial.stdout) == chain(start="baseline")
    assert json.loads(paths.train_info.read_text())["epochs_run"] == 1
    assert set(json.loads(paths.metrics_file.read_text())["mtl_gain"]["tasks"]) == set(metrics["tasks"])
    _commit(project, "one epoch")
    diff = _dvc_json(project, "metrics", "diff", "HEAD~1")["data/05_evaluation/summary.json"]
    assert diff["click.auc"]["old"] != diff["click.auc"]["new"] and "dwell.rmse" in diff, diff
    _params_file_runs_in_its_own_workspace(project)

    # An edit to a module a stage's code imports makes exactly the stages that run it stale
    # (their code deps are computed from imports: mtl/codedeps.py), and no other.
    assert _stale(project) == set()
    stale = set()
    for edited in ("mtl/models/stem.py", "mtl/data/contracts/gx_custom.py"):  # gx_custom: imported inside a function
        with (project / edited).open("a") as f:
            f.write("\n# an edit\n")
        stale |= {s.name for s in STAGES if edited in code_deps(s.function)}
        assert _stale(project) == stale
    assert {"train", "baseline", "validate"} <= stale and not {"generate", "preprocess"} & stale


def _commit(root, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], cwd=root, check=True)


def _dvc_json(root, *args) -> dict | list:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args, "--json"], cwd=root, capture_output=True, text=True,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _an_experiment_trains_and_evaluates_but_never_promotes(root):
    """`dvc exp run` (here --temp: in a copy under .dvc/tmp/exps, tracking into the project's own
    store) trains and evaluates a variant, rerunning only what its params change (the single-task
    baseline has no experts: kept); `dvc exp show` puts its metrics beside the commit's; no
    version is registered and the champion does not move."""
    paths = Paths.at(root)
    client = tracking.client(paths)

    def registry() -> list[tuple[str, list[str]]]:
        return sorted((v.version, sorted(client.get_model_version("mtl-ecommerce", v.version).aliases))
                      for v in client.search_model_versions("name='mtl-ecommerce'"))

    before = registry()
    assert before and any("champion" in aliases for _, aliases in before)
    # a variant the rest of the test never trains (the experiment fills DVC's run-cache)
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", "three-experts",
                           "-S", "model.experts=3"], cwd=root, capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # validate's data docs are not cached, so the temporary copy has none and validates again
    assert ran(proc.stdout) == ["validate", "train", *chain(start="score")], proc.stdout[-3000:]
    assert registry() == before  # the same versions, the same champion
    assert not list((root / ".dvc" / "tmp").rglob("mlflow.db"))  # tracked into the project's store

    commit = _dvc_json(root, "exp", "show")
    head = next(row for row in commit if row.get("rev") != "workspace")
    summary = "data/05_evaluation/summary.json"
    assert set(head["data"]["metrics"][summary]["data"]) >= {"click", "add_to_cart", "purchase", "dwell"}
    exp = head["experiments"][0]["revs"][0]
    assert exp["name"] == "three-experts"
    assert exp["data"]["params"]["params.yaml"]["data"]["model"]["experts"] == 3
    assert exp["data"]["metrics"][summary]["data"]["click"]["auc"] > 0.5

    tagged = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id],
                                filter_string="tags.`mtl.dvc_experiment` = 'three-experts'")
    runs = [r for r in tagged if r.data.tags.get("mtl.role") != "baseline"]  # and its baseline's child run
    assert len(runs) == 1 and len(tagged) == 2
    assert runs[0].data.tags["mtl.promotion"].startswith("experiment: not registered")
    assert runs[0].data.tags["mtl.project_dir"] == str(paths.root)  # not the temporary copy


def _params_file_runs_in_its_own_workspace(root):
    """`mtl --params FILE run`: DVC reads params.yaml, so the run happens in FILE's workspace,
    starting from the checkout's outputs; the checkout's params.yaml and dvc.lock stay as they were."""
    import yaml

    other = root / "configs" / "fewer_resamples.yaml"
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["evaluation"]["bootstrap"] = 20
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    own = {name: (root / name).read_bytes() for name in ("params.yaml", "dvc.lock")}
    proc = subprocess.run([sys.executable, "-m", "mtl.cli", "--params", str(other), "run"], cwd=root,
                          capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ran(proc.stdout) == chain(start="evaluate_task@0")  # only what the bootstrap changes
    assert "pipeline finished" in proc.stdout and {n: (root / n).read_bytes() for n in own} == own
    workspace = root / ".mtl" / "runs" / "params-fewer_resamples"
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]
    assert lock["evaluate_task@0"]["params"]["params.yaml"]["evaluation"]["bootstrap"] == 20


def _stale(root) -> set[str]:
    """The stages `dvc status` reports as changed (their own deps, params or outputs)."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True,
                          env=_env(), check=True)
    return {name.split("@")[0] for name in json.loads(proc.stdout or "{}")}


def _write_bad(tmp_path, name, mutate) -> str:
    df = synthetic.generate(SyntheticConfig(rows=20_000, users=2_000, items=1_000, categories=20, brands=50))
    df = mutate(df)
    path = tmp_path / f"{name}.parquet"
    df.to_parquet(path, index=False)
    return str(path)


def test_bad_data_stops_at_validate_and_keeps_the_champion(project, tmp_path):
    set_params(project, {"gate.tasks.click.floor": 0.5, "gate.tasks.add_to_cart.floor": 0.5,
                         "gate.tasks.purchase.floor": 0.5})
    run_chain(project)  # an accepted first model: the champion to protect
    paths = Paths.at(project)
    tracking.configure(paths)
    client = tracking.client(paths)
    champion = client.get_model_version_by_alias("mtl-ecommerce", "champion")

    def flip_purchases(df):
        rows = df.index[df["click"] == 0][:37]
        df.loc[rows, "purchase"] = 1
        return df

    cases = [
        ("no_purchase_column", lambda df: df.drop(columns=["purchase"]), ["missing column 'purchase'"]),
        ("purchase_without_click", flip_purchases, ["purchase", "click", "37 rows"]),
        # drift against the champion's training statistics, read from the registry
        ("price_in_cents", lambda df: df.assign(price=df["price"] * 100),
         ["'price' drifted: PSI", f"mtl-ecommerce version {champion.version}'s training data"]),
    ]
    for name, mutate, expected in cases:
        source = _write_bad(tmp_path, name, mutate)
        before = pd.read_parquet(source)
        set_params(project, {"data.source": source})
        proc = repro(project, check=False)
        assert proc.returncode != 0
        out = proc.stdout + proc.stderr
        assert ran(proc.stdout)[-1] == "validate", ran(proc.stdout)
        for text in expected:
            assert text in out, (text, out[-3000:])
        pd.testing.assert_frame_equal(pd.read_parquet(source), before)  # raw data untouched
        result = json.loads(paths.validation_result.read_text())
        assert result["success"] is False
        assert not paths.raw_file.exists() and not paths.validation_passed.exists()
    assert client.get_model_version_by_alias("mtl-ecommerce", "champion").version == champion.version

    # Each failed batch moved to quarantine with its report; the source files stay where they were.
    quarantined = sorted((project / "data" / "quarantine").iterdir())
    assert len(quarantined) == len(cases)
    last = quarantined[-1]
    assert len(pd.read_parquet(last / "batch" / "impressions.parquet")) == 20_000
    assert json.loads((last / "result.json").read_text())["drift_reference"]["version"] == str(champion.version)
    assert "'price' drifted" in (last / "summary.txt").read_text()
    assert (last / "data_docs" / "index.html").is_file()

    # A mildly drifted batch passes; the warning reaches the log and the MLflow run of training.
    def shift_device(df):
        android = df.index[df["device"] == "android"]
        df.loc[android[::2], "device"] = "ios"
        return df

    set_params(project, {"data.source": _write_bad(tmp_path, "more_ios", shift_device)})
    proc = repro(project, "train")
    assert "WARNING: 'device' drifted" in proc.stdout
    run = client.get_run(json.loads(paths.train_info.read_text())["run_id"])
    assert run.data.tags["mtl.validation"].startswith("passed with")
    assert "'device' drifted" in run.data.tags["mtl.validation_warnings"]
    assert 0.1 <= run.data.metrics["drift_psi_device"] < 0.25
    assert run.data.tags["mtl.drift_reference"] == f"mtl-ecommerce version {champion.version}"
    assert len(client.search_model_versions("name='mtl-ecommerce'")) == 1


def test_users_own_parquet_runs_through_the_same_chain(project, tmp_path):
    df = synthetic.generate(SyntheticConfig(rows=20_000, users=1_500, items=800, categories=20, brands=50))
    own = pd.DataFrame({
        "visitor": df["user_id"].astype(str).radd("v"), "sku": df["item_id"], "surface": df["scenario"],
        "amount": df["price"], "clicked": df["click"], "ordered": df["purchase"],
        "session_note": "ignored column",
    })
    source = tmp_path / "my_log.parquet"
    own.to_parquet(source, index=False)
    params = (project / "params.yaml")
    import yaml

    raw = yaml.safe_load(params.read_text())
    raw["data"]["source"] = str(source)
    raw["data"]["schema"] = {"categorical": ["visitor", "sku", "surface"], "numeric": ["amount"],
                             "labels": ["clicked", "ordered"], "scenario": "surface"}
    raw["features"]["columns"] = {"amount": {"clip": [0, None], "log": True}, "sku": {"hash_buckets": 16}}
    raw["tasks"] = [{"name": "ctr", "label": "clicked", "type": "binary"},
                    {"name": "ctcvr", "label": "ordered", "type": "binary", "implies": "clicked"}]
    raw["gate"]["tasks"] = {"ctr": {"floor": 0.5}}
    # The defaults slice by `device` and compute GAUC by `user_id`, which this schema lacks.
    raw["evaluation"] |= {"slices": [], "gauc_by": "visitor"}
    raw["gate"]["slices"] = {"surface": {"auc": {"max_regression": 0.01}}}
    # The default contract names the synthetic log's columns; this log has no impression key
    # (the same visitor sees the same sku on the same surface again) and its own columns.
    raw["validation"] |= {"keys": [], "columns": {"amount": {"min": 0}, "surface": {"cardinality": [1, 10]}},
                          "expectations": None}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))

    proc = repro(project)
    assert ran(proc.stdout) == chain(tasks=2)
    metrics = json.loads(Paths.at(project).metrics_file.read_text())["tasks"]
    assert set(metrics) == {"ctr", "ctcvr"}
    assert metrics["ctr"]["auc"] > 0.5 and metrics["ctr"]["gauc"] is not None
    assert set(metrics["ctr"]["slices"]["surface"]) == {"home_feed", "search", "product_detail"}
    split = json.loads((Paths.at(project).transform_file).read_text())["split"]
    assert split["method"] == "random"  # no time column declared
