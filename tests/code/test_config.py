"""params.yaml parsing: the shipped file loads; every kind of mistake names its key."""

from pathlib import Path

import pytest
import yaml

from mtl.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_shipped_params_load():
    cfg = load_config(REPO / "params.yaml")
    assert [t.name for t in cfg.tasks] == ["click", "add_to_cart", "purchase", "dwell"]
    assert cfg.data.is_synthetic
    assert cfg.task("dwell").condition.column == "click"


def test_config_is_frozen():
    cfg = load_config(REPO / "params.yaml")
    with pytest.raises(Exception):
        cfg.train.epochs = 99  # type: ignore[misc]


def _mutate(path: str, value):
    raw = raw_params()
    node = raw
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("train.epohcs", 3, "train.epohcs: unknown key"),
        ("train.epochs", -1, "train.epochs"),
        ("train.epochs", "three", "train.epochs"),
        ("train.device", "tpu", "train.device"),
        ("model.architecture", "transformer9000", "model.architecture: unknown 'transformer9000'"),
        ("data.split.test", 1.5, "data.split.test"),
        ("data.synthetic.task_correlation", 2.0, "data.synthetic.task_correlation"),
        ("tasks.0.label", "clicks", "tasks[0].label: 'clicks' is not one of data.schema.labels"),
        ("tasks.0.type", "ranking", "tasks.0.type"),
        ("tasks.1.implies", "nonexistent", "tasks[1].implies"),
        ("gate.tasks", {"ctr": {"floor": 0.5}}, "gate.tasks.ctr: no task named 'ctr'"),
        ("gate.tasks", {"click": {"max_regression": -1}}, "gate.tasks.click.max_regression"),
        ("gate.tasks", {"click": {"floor": "high"}}, "gate.tasks.click.floor: Input should be a valid number"),
        ("train.batch_size", 0, "train.batch_size: Input should be greater than 0"),
        ("train.weighting.method", "magic", "train.weighting.method: Value error, unknown weighting 'magic'"),
        ("train.distributed.nnodes", 2, "nnodes is 2: set rdzv_endpoint"),
        ("train.distributed.rdzv_endpoint", "gpu0", "rdzv_endpoint 'gpu0' is not host:port"),
        ("model", "mmoe", "model: Input should be a valid dictionary"),
        ("data.schema.time", 5, "data.schema.time: Input should be a valid string"),
        ("validation.columns", {"no_such_column": {"min": 0}}, "validation.columns.no_such_column: not a column"),
        ("features.columns", {"no_such_column": {}}, "features.columns.no_such_column: not a categorical or numeric"),
        ("evaluation.bootstrap", -3, "evaluation.bootstrap: Input should be greater than or equal to 0"),
        ("scoring.chunk_rows", -5, "scoring.chunk_rows: Input should be greater than 0"),
        ("airflow.retries", -1, "airflow.retries: Input should be greater than or equal to 0"),
        ("evaluation.baselines", ["single_task", "forest"], "evaluation.baselines.1: Input should be 'single_task' or"),
    ],
)
def test_invalid_values_name_the_key(path, value, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(_mutate(path, value))
    assert expected in str(err.value)


@pytest.mark.parametrize("value, expected", [(True, ("single_task", "trees")), (False, ()),
                                             (["trees"], ("trees",)), ("single_task", ("single_task",))])
def test_baselines_are_all_none_or_named(value, expected):
    assert parse_config(_mutate("evaluation.baselines", value)).evaluation.baselines == expected


def test_column_in_two_roles_is_rejected():
    raw = raw_params()
    raw["data"]["schema"]["numeric"].append("click")
    with pytest.raises(ConfigError, match="'click' is listed both"):
        parse_config(raw)


def test_duplicate_task_names_rejected():
    raw = raw_params()
    raw["tasks"].append(dict(raw["tasks"][0]))
    with pytest.raises(ConfigError, match="unique"):
        parse_config(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_apply_and_are_validated():
    cfg = load_config(REPO / "params.yaml", {"train.epochs": 7})
    assert cfg.train.epochs == 7
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(REPO / "params.yaml", {"train.epochs": 0})
