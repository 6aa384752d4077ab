"""The stage list is the one declaration of the pipeline: dvc.yaml, the CLI and the DAG follow it,
and each stage's code deps are computed from its imports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mtl.cli import STAGE_HELP
from mtl.codedeps import code_deps
from mtl.stagelist import STAGES, dvc_yaml

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_dvc_yaml_is_the_generated_one():
    assert (REPO / "dvc.yaml").read_text() == dvc_yaml(), "run `mtl dvc-yaml` and commit dvc.yaml"


def test_dvc_yaml_and_the_cli_list_the_same_stages_in_order():
    names = [s.name for s in STAGES]
    assert list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]) == names
    assert list(STAGE_HELP) == [n.replace("_", "-") for n in names]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_stage_depends_on_its_module_and_the_config(stage):
    deps = code_deps(stage.function)
    own = f"mtl/stages/{stage.name}.py"
    assert {own, "mtl/stages/__init__.py", "mtl/config/__init__.py", "mtl/config/model.py", "mtl/paths.py",
            "mtl/__init__.py"} <= set(deps)
    assert all((REPO / d).is_file() for d in deps)
    # one module per stage: another stage's module is a dependency only where this one imports it
    others = {f"mtl/stages/{s.name}.py" for s in STAGES} - {own}
    assert others & set(deps) <= {"mtl/stages/train.py", "mtl/stages/gate.py"}


def test_code_deps_follow_imports_inside_functions():
    # the modules the hand-written list had missed
    assert "mtl/data/contracts/gx_custom.py" in code_deps("mtl.stages.validate:run")
    assert "mtl/data/features/text.py" in code_deps("mtl.stages.preprocess:run")


def test_a_registry_counts_where_it_resolves_a_class_not_where_a_name_is_checked():
    train = set(code_deps("mtl.stages.train:run"))
    for module in ("stem", "mmoe", "funnel", "interactions/fm", "interactions/dcn_v2"):
        assert f"mtl/models/{module}.py" in train
    assert "mtl/training/weighting/famo.py" in train
    # the config checks architecture names against the registry: that imports no model, so an
    # edit to a model does not make the data stages stale
    generate = set(code_deps("mtl.stages.generate:run"))
    assert "mtl/models/stem.py" not in generate and "mtl/training/loop.py" not in generate
    assert "mtl/data/contracts/validation.py" not in set(code_deps("mtl.stages.train:run"))


def test_an_unknown_function_is_named():
    with pytest.raises(ValueError, match="no top-level nope"):
        code_deps("mtl.stages.train:nope")


def test_every_declared_data_path_is_in_the_paths_catalog(tmp_path):
    """dvc.yaml's data deps and outs (from the stage list) are the paths the stages use."""
    from mtl.paths import Paths

    paths = Paths.at(tmp_path)
    known = set()
    for name in dir(Paths):
        value = getattr(paths, name) if isinstance(getattr(Paths, name), property) else None
        if value is not None:
            known.add(str(value.relative_to(tmp_path)))
    known.add(str(paths.task_eval_dir("TASK").relative_to(tmp_path)))  # per task: a method, not a property
    declared = set()
    for stage in STAGES:
        for entry in (*stage.deps, *stage.outs, *stage.metrics, *stage.plots):
            path = entry if isinstance(entry, str) else entry[0]
            if path.startswith("data/"):
                declared.add(path.replace("${item.name}", "TASK"))
    missing = {p for p in declared if p not in known and not any(k.startswith(p + "/") for k in known)}
    assert missing == set()


def test_the_readme_stage_table_is_the_generated_one():
    from mtl.stagelist import markdown_table

    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "the README's stage table differs: paste `python -m mtl.stagelist` over it"
