"""Each public-dataset preset through the whole chain (every stage, in-process: `dvc repro` of
the same stages is tested in test_dvc.py), on tiny real samples. The supply-chain preset runs
through the Airflow DAGs instead (tests/airflow/test_dag_run.py).

The samples are laid out where the presets expect the downloaded files (data/external/<name>),
so this also checks the presets' own data.path. 100-300 rows make no useful model: the gate
may well reject it; what matters is that every stage runs and reports every task.
"""

import json
import shutil

import pytest

from mtl.config import load_config
from tests.conftest import SHARED_SAMPLES, set_params
from tests.data.test_adapters import ALI_CCP, ALIEXPRESS, CENSUS, lay_out
from tests.e2e.test_stages import run_chain

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="needs the shared dataset samples")]

LAYOUTS = {"ali_ccp": ALI_CCP, "aliexpress": ALIEXPRESS, "census_income": CENSUS}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_preset_runs_the_whole_chain(project, name):
    shutil.copy(project / "configs" / f"{name}.yaml", project / "params.yaml")
    # the samples have 100-200 rows; the presets' row floor is for the real datasets
    set_params(project, {"train.epochs": 1, "train.progress": False, "train.num_threads": 1,
                         "validation.min_rows": 1})
    cfg = load_config(project / "params.yaml")
    lay_out(project / cfg.data.path, LAYOUTS[name])

    paths = run_chain(project)
    assert all((paths.task_eval_dir(t.name) / "metrics.json").is_file() for t in cfg.tasks)
    manifest = json.loads(paths.raw_manifest.read_text())
    assert manifest["adapter"] == name and set(manifest["splits"]) >= {"train", "test"}
    metrics = json.loads(paths.metrics_file.read_text())
    assert set(metrics["tasks"]) == {t.name for t in cfg.tasks}
    assert all("auc" in metrics["tasks"][t.name] for t in cfg.tasks)
    assert metrics["test_rows"] == manifest["splits"]["test"]  # judged on the official test files
    decision = json.loads(paths.decision_file.read_text())
    assert decision["summary"]


def test_m5_sample_through_the_chain(project):
    """The M5 layout (a sample in Kaggle's exact files) through every stage: ingested into the
    daily panel, its contract validated, framed into weekly-origin examples, trained, evaluated,
    gated. 12 series x 60 days make no useful model; a shorter lookback and one test and one
    validation origin leave training origins in 60 days."""
    shutil.copy(project / "configs" / "m5.yaml", project / "params.yaml")
    set_params(project, {"train.epochs": 1, "train.progress": False, "train.num_threads": 1,
                         "validation.min_rows": 1, "evaluation.bootstrap": 20, "data.panel.lookback": 14,
                         "data.panel.test_origins": 1, "data.panel.validation_origins": 1})
    shutil.copytree(project / "tests" / "data" / "samples" / "m5", project / "data" / "external" / "m5")
    paths = run_chain(project)
    assert json.loads(paths.raw_manifest.read_text())["rows"] == 720
    split = json.loads(paths.transform_file.read_text())["split"]
    assert split["rows"]["test"] == 12 and split["rows"]["validation"] == 12  # one origin per series each
    metrics = json.loads(paths.metrics_file.read_text())
    assert set(metrics["tasks"]) == {"demand"} and metrics["tasks"]["demand"]["rmse"] >= 0
    assert json.loads(paths.decision_file.read_text())["summary"]
