"""The `mtl` command: help for every stage, and user errors as messages, not tracebacks."""

import re
import subprocess
import sys

import pytest

from mtl.cli import STAGE_HELP, main
from tests.conftest import set_params

STAGES = ["generate", "validate", "preprocess", "baseline", "train", "score", "evaluate-task", "evaluate", "gate",
          "promote"]


def test_help_lists_every_stage_in_order():
    out = subprocess.run([sys.executable, "-m", "mtl.cli", "--help"], capture_output=True, text=True, check=True).stdout
    # the list of subcommands, one per line (the description above it wraps at hyphens)
    positions = [re.search(rf"^\s+{s}\s", out, re.M).start() for s in STAGES]
    assert positions == sorted(positions)
    assert list(STAGE_HELP) == STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_its_own_help(stage):
    out = subprocess.run([sys.executable, "-m", "mtl.cli", stage, "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert STAGE_HELP[stage].split()[0] in out


def test_bad_params_exit_2_naming_the_key(project, capsys):
    set_params(project, {"train.epochs": -3})
    assert main(["--project", str(project), "train"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs" in err and "Traceback" not in err


def test_missing_upstream_output_is_explained(project, capsys):
    assert main(["--project", str(project), "preprocess"]) == 2
    assert "run `mtl validate`" in capsys.readouterr().err


def test_dvc_yaml_matches_the_cli_and_paths():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert [name.replace("_", "-") for name in stages] == STAGES
    for name, stage in stages.items():
        stage = stage.get("do", stage)  # a foreach stage: one per task
        assert stage["cmd"].split()[:2] == ["mtl", name.replace("_", "-")]


def test_a_split_that_cannot_be_made_exits_2_with_the_fix(project, capsys):
    set_params(project, {"data.synthetic.rows": 3_000, "data.synthetic.days": 2})
    assert main(["--project", str(project), "generate"]) == 0
    assert main(["--project", str(project), "validate"]) == 0
    capsys.readouterr()
    assert main(["--project", str(project), "preprocess"]) == 2
    err = capsys.readouterr().err
    assert "spans 2 day(s)" in err and "validation_days" in err and "Traceback" not in err


def test_registry_commands_have_help():
    for command in ("champion", "rollback", "lineage"):
        out = subprocess.run([sys.executable, "-m", "mtl.cli", command, "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert "usage" in out


def test_evaluate_task_names_the_tasks_it_knows(project, capsys):
    assert main(["--project", str(project), "evaluate-task", "clicks"]) == 2
    err = capsys.readouterr().err
    assert "no task named 'clicks'" in err and "click" in err and "Traceback" not in err
