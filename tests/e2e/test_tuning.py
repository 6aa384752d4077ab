"""`mtl tune` on a small log: trials in the study and as MLflow child runs of one parent, Ctrl-C
and a killed process resumed, the registry untouched, and the best settings applied."""

import optuna
import yaml
from mlflow import MlflowClient

from mtl import cli, tracking
from mtl.config import load_config
from mtl.paths import Paths
from mtl.training import loop
from mtl.tuning import flat
from tests.conftest import set_params

NAME = "mtl-ecommerce"
SPACE = {"train.learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
         "model.expert_hidden": {"choices": [[16], [32, 16]]},
         "model.interaction": {"choices": ["none", "fm"]}}


def tune(project, *args: str) -> int:
    return cli.main(["--project", str(project), "tune", *args])


def study(paths: Paths) -> optuna.Study:
    storage = f"sqlite:///{paths.optuna_db}"
    (name,) = optuna.get_all_study_names(storage)  # one study, however often the search ran
    return optuna.load_study(study_name=name, storage=storage)


def runs(paths: Paths):
    tracking.configure(paths, tracking.TUNE_EXPERIMENT)
    experiment = MlflowClient().get_experiment_by_name(tracking.TUNE_EXPERIMENT)
    return MlflowClient().search_runs([experiment.experiment_id])


def fake_champion(paths: Paths) -> None:
    """A registered version holding the champion alias: what tuning must leave alone."""
    tracking.configure(paths)
    client = MlflowClient()
    client.create_registered_model(NAME)
    model = paths.root / "elsewhere"
    model.mkdir()
    client.create_model_version(NAME, model.as_uri())
    client.set_registered_model_alias(NAME, "champion", "1")


def test_search_resumes_tracks_its_trials_and_never_registers(project, monkeypatch, capsys):
    # The shipped learning rate is far below the space and barely trains in 2 epochs, so the
    # search has something to beat; it is outside the space, so trial 0 trains it all the same.
    set_params(project, {"train.num_threads": 1, "train.learning_rate": 1e-5, "model.expert_hidden": [32, 16],
                         "tune.space": SPACE})
    for stage in ("generate", "validate", "preprocess"):
        assert cli.main(["--project", str(project), stage]) == 0
    paths = Paths.at(project)
    fake_champion(paths)
    capsys.readouterr()

    # Ctrl-C during the second trial: the first is kept, the runs end KILLED.
    real_train, calls = loop.train, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(loop, "train", interrupted)
    assert tune(project, "--trials", "3") == 130
    err = capsys.readouterr().err
    assert "keeps its 1 finished trial(s)" in err and "rerun `mtl tune` to resume" in err
    assert [t.state.name for t in study(paths).trials] == ["COMPLETE", "FAIL"]
    (parent,) = [r for r in runs(paths) if r.data.tags.get("mtl.kind") == "tune"]
    assert parent.info.status == "KILLED"
    monkeypatch.setattr(loop, "train", real_train)

    # A process killed outright leaves its trial RUNNING: it must not block the next search.
    study(paths).ask()
    assert tune(project, "--trials", "2") == 0
    assert tune(project, "--trials", "3") == 0
    out = capsys.readouterr().out
    assert "resuming, 2 of 3 trials finished" in out

    trials = study(paths).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[0].user_attrs["mtl.shipped"] and trials[0].user_attrs["mtl.values"]["train.learning_rate"] == 1e-5

    # One parent run (resumed, not duplicated); a child per trial that started training.
    all_runs = runs(paths)
    (parent,) = [r for r in all_runs if r.data.tags.get("mtl.kind") == "tune"]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(all_runs) == 1 + len(children)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == 3
    assert sorted(r.data.tags["mtl.trial"] for r in children) == ["0", "1", "3", "4"]
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED", "FINISHED", "KILLED"]
    for child in children:
        assert set(child.data.params) == set(SPACE)
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert all(len(MlflowClient().get_metric_history(r.info.run_id, "val_selection_score")) == 2 for r in finished)

    # The registry as it was: one version, still the champion; no training runs either.
    tracking.configure(paths)
    client = MlflowClient()
    assert [m.name for m in client.search_registered_models()] == [NAME]
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id]) == []

    # The best beats 1e-5; its overlay holds only keys of the space and applies to params.yaml.
    assert "beats the shipped defaults" in out
    best = flat(yaml.safe_load(paths.tune_best.read_text()))
    assert set(best) == set(SPACE)
    assert load_config(project / "params.yaml", best)
    assert cli.main(["--project", str(project), "tune", "--apply"]) == 0
    applied = load_config(project / "params.yaml")
    assert applied.train.learning_rate == best["train.learning_rate"] != 1e-5
    assert list(applied.model.expert_hidden) == best["model.expert_hidden"]


def test_without_features_it_says_what_to_run(project, capsys):
    assert tune(project) == 2
    err = capsys.readouterr().err
    assert "dvc repro preprocess" in err and "Traceback" not in err
