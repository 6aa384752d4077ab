"""`mtl tune` without training: the search space in params.yaml (every mistake names
tune.space.<key>), what a trial trains, the verdict, the overlay and applying it."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from mtl.config import DEFAULT_SPACE, ConfigError, SearchDimension, load_config, parse_config, with_overrides
from mtl.config import apply_overrides
from mtl.tuning import (TrialRow, apply_best, current_values, flat, overlay_text, shipped_params, study_name,
                        suggest, table, verdict)

REPO = Path(__file__).resolve().parents[2]


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def with_space(space: dict) -> dict:
    raw = raw_params()
    raw["tune"]["space"] = space
    return raw


def test_shipped_space_loads_and_matches_the_code_default():
    cfg = load_config(REPO / "params.yaml")
    assert cfg.tune.space == DEFAULT_SPACE
    assert cfg.tune.space["model.expert_hidden"].choices == ([64, 32], [128, 64], [256, 128])


@pytest.mark.parametrize("key, dim, expected", [
    ("model.dropot", {"low": 0.0, "high": 0.3}, "tune.space.model.dropot: not a key of params.yaml"),
    ("model.dropout", {"low": 0.3, "high": 0.3}, "tune.space.model.dropout: Value error, low (0.3) must be below high"),
    ("model.dropout", {"low": 0.5, "high": 0.1}, "tune.space.model.dropout: Value error, low (0.5)"),
    ("model.experts", {"choices": []}, "tune.space.model.experts: Value error, choices is empty"),
    ("model.experts", {"low": 2}, "tune.space.model.experts: Value error, give low and high"),
    ("model.experts", {"low": 2, "high": 8, "choices": [2]}, "tune.space.model.experts: Value error, give either"),
    ("train.learning_rate", {"low": 0.0, "high": 0.1, "log": True}, "tune.space.train.learning_rate: Value error, a log"),
    ("model.dropout", {"low": 0.0, "high": 1.0}, "tune.space.model.dropout: 1.0 is not a valid value: "
                                                 "model.dropout: Input should be less than 1"),
    ("model.embedding_dim", {"choices": [8, "wide"]}, "tune.space.model.embedding_dim: 'wide' is not a valid value"),
    ("model.architecture", {"choices": ["mmoe", "nope"]}, "tune.space.model.architecture: 'nope' is not a valid"),
    ("model.sequence", {"choices": [1]}, "tune.space.model.sequence: a section, not a value"),
    ("features.sequence.max_length", {"choices": [10, 20]}, "tune.space.features.sequence.max_length: only model.*"),
    ("train.epochs", {"choices": [2, 4]}, "tune.space.train.epochs: set tune.epochs"),
    ("train.seed", {"choices": [1, 2]}, "tune.space.train.seed: a search over seeds"),
    ("train.distributed.nnodes", {"choices": [1, 2]}, "tune.space.train.distributed.nnodes: how training runs"),
])
def test_a_bad_space_names_the_key(key, dim, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(with_space({key: dim}))
    assert expected in str(err.value)


def test_a_value_valid_alone_but_not_with_the_config_names_both():
    # uncertainty weighting conflicts with the shipped static task weight of dwell
    with pytest.raises(ConfigError) as err:
        parse_config(with_space({"train.weighting.method": {"choices": ["static", "uncertainty"]}}))
    assert "tune.space.train.weighting.method: 'uncertainty' is not a valid value: tasks[3].weight" in str(err.value)


def test_other_tune_settings_are_typed():
    raw = raw_params()
    raw["tune"]["trials"] = 0
    with pytest.raises(ConfigError, match="tune.trials: Input should be greater than 0"):
        parse_config(raw)
    with pytest.raises(ConfigError, match="tune.pruning.warmup_epochs"):
        load_config(REPO / "params.yaml", {"tune.pruning.warmup_epochs": -1})


SPACE = {
    "train.learning_rate": SearchDimension(low=3e-4, high=1e-2, log=True),
    "model.experts": SearchDimension(low=2, high=8),
    "model.dropout": SearchDimension(low=0, high=1e-1),  # integer ends, but the key holds a float
    "model.expert_hidden": SearchDimension(choices=([64, 32], [128, 64])),
    "model.interaction": SearchDimension(choices=("none", "fm")),
}


def test_a_trial_draws_what_the_config_takes():
    cfg = load_config(REPO / "params.yaml")
    current = current_values(cfg, list(SPACE))
    trial = optuna.trial.FixedTrial({"train.learning_rate": 0.0031274, "model.experts": 3, "model.dropout": 0.05,
                                     "model.expert_hidden": "[64, 32]", "model.interaction": "fm"})
    values = suggest(trial, SPACE, current)
    # three significant digits: what the trial trains is what the overlay writes
    assert values == {"train.learning_rate": 0.00313, "model.experts": 3, "model.dropout": 0.05,
                      "model.expert_hidden": [64, 32], "model.interaction": "fm"}
    assert isinstance(values["model.experts"], int) and isinstance(values["model.dropout"], float)
    trained = with_overrides(cfg, values)
    assert trained.model.expert_hidden == (64, 32) and trained.train.learning_rate == 0.00313


def test_the_shipped_trial_holds_the_shipped_values_the_space_can():
    cfg = load_config(REPO / "params.yaml", {"model.experts": 12, "model.expert_hidden": [128, 64]})
    params = shipped_params(SPACE, current_values(cfg, list(SPACE)))
    assert "model.experts" not in params  # 12 is outside 2..8: trial 0 trains it anyway
    assert params["model.expert_hidden"] == "[128, 64]"  # Optuna's label of the list choice
    assert params["train.learning_rate"] == cfg.train.learning_rate


def test_study_name_resumes_on_more_trials_and_changes_with_the_search():
    cfg = load_config(REPO / "params.yaml")
    name = study_name(cfg, "features-a")
    assert name.startswith("mtl-ecommerce-")
    assert study_name(with_overrides(cfg, {"tune.trials": 50, "tune.timeout_minutes": 5}), "features-a") == name
    assert study_name(cfg, "features-b") != name
    assert study_name(with_overrides(cfg, {"tune.rows": 1000}), "features-a") != name
    assert study_name(with_overrides(cfg, {"train.batch_size": 512}), "features-a") != name
    assert study_name(with_overrides(cfg, {"tune.study": "mine"}), "features-a") == "mine"


def row(number, value, state="complete", shipped=False, **values):
    return TrialRow(number, state, value, 1.0, values, shipped)


def test_verdict():
    shipped = row(0, 0.70, shipped=True)
    assert verdict(row(3, 0.72), shipped) == (True, "trial 3 beats the shipped defaults: val_selection_score "
                                                   "0.7200 against 0.7000 (+0.0200) on the validation split")
    for best in (shipped, row(2, 0.70)):
        improved, message = verdict(best, shipped)
        assert not improved and message.startswith("could not beat the shipped defaults")
    assert not verdict(None, None)[0]
    improved, message = verdict(row(1, 0.8), row(0, None, state="fail", shipped=True))
    assert not improved and "could not compare" in message


def test_overlay_is_params_shaped_and_loads_as_overrides(tmp_path):
    values = {"train.learning_rate": 0.00313, "model.expert_hidden": [64, 32], "model.interaction": "none"}
    assert flat(apply_overrides({}, values)) == values
    text = overlay_text(row(4, 0.72, **values), row(0, 0.70, shipped=True), "s")
    assert "  expert_hidden: [64, 32]\n" in text and "train:\n  learning_rate: 0.00313\n" in text
    loaded = flat(yaml.safe_load(text))
    assert loaded == values
    cfg = load_config(REPO / "params.yaml", loaded)
    assert cfg.model.expert_hidden == (64, 32) and cfg.model.interaction == "none"


def test_apply_writes_the_values_and_keeps_the_comments(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    overlay = tmp_path / "tune_best.yaml"
    overlay.write_text("train:\n  learning_rate: 0.00313\n  embedding_l2: 0.00001\nmodel:\n  expert_hidden: [64, 32]\n")
    shipped = load_config(params).train.learning_rate
    changes = apply_best(params, overlay)
    assert any(c.startswith(f"train.learning_rate: {shipped} -> 0.00313") for c in changes), changes
    after = params.read_text()
    before = (REPO / "params.yaml").read_text()
    # only the three values' lines differ; every comment is kept
    diff = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(diff) == 3 and len(before.splitlines()) == len(after.splitlines()), diff
    assert "  expert_hidden: [64, 32]" in after
    cfg = load_config(params)
    assert cfg.train.learning_rate == 0.00313 and cfg.train.embedding_l2 == 1e-5  # PyYAML reads what it wrote
    assert apply_best(params, overlay) == []


def test_apply_refuses_what_does_not_load(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    overlay = tmp_path / "tune_best.yaml"
    overlay.write_text("model:\n  dropout: 1.5\n")
    with pytest.raises(ConfigError, match="model.dropout"):
        apply_best(params, overlay)
    assert params.read_text() == (REPO / "params.yaml").read_text()
    from mtl.tuning import TuneError

    with pytest.raises(TuneError, match="run `mtl tune` first"):
        apply_best(params, tmp_path / "missing.yaml")


def test_table_marks_the_shipped_trial():
    out = table([row(0, 0.7, shipped=True, **{"model.experts": 4}), row(1, None, state="pruned",
                                                                         **{"model.experts": 8})], ["model.experts"])
    lines = out.splitlines()
    assert lines[0].split() == ["trial", "state", "score", "seconds", "experts"]
    assert lines[1].split()[:3] == ["0*", "complete", "0.7000"] and lines[2].split()[:2] == ["1", "pruned"]


def test_tune_has_help():
    out = subprocess.run([sys.executable, "-m", "mtl.cli", "tune", "--help"], capture_output=True, text=True,
                         check=True).stdout
    out = " ".join(out.split())  # argparse wraps lines
    assert "--trials N" in out and "--apply" in out and "Tuning never registers a model" in out


def test_rows_samples_across_shards_without_repeats(tmp_path):
    import numpy as np

    from mtl.data.features import Arrays
    from mtl.data.features.shards import ShardWriter, open_split
    from mtl.tuning.search import _training_rows

    writer = ShardWriter(tmp_path, shard_rows=40)
    ids = np.arange(100)
    writer.write(Arrays(ids[:, None].astype(np.int32), np.zeros((100, 1), np.float32),
                        np.zeros((100, 1), np.float32), np.ones((100, 1), bool)))
    writer.close()
    shards = open_split(tmp_path)
    assert shards.n_shards == 3
    sample = _training_rows(shards, 30, seed=0)
    picked = sample.cat[:, 0]
    assert len(picked) == 30 and len(set(picked)) == 30 and {int(p) // 40 for p in picked} == {0, 1, 2}
    assert np.array_equal(_training_rows(shards, 30, seed=0).cat, sample.cat)  # seeded
    assert _training_rows(shards, None, seed=0) is shards and _training_rows(shards, 500, seed=0) is shards
