"""How `mtl train` launches torchrun (train.distributed): the command line for each setting."""

from __future__ import annotations

import pytest

from mtl.config import ConfigError, load_config
from mtl.training.distributed import launch_command, processes_per_node
from tests.conftest import REPO


def _cfg(tmp_path, **distributed):
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"]["distributed"].update(distributed)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_one_process_runs_in_place(tmp_path):
    assert launch_command(_cfg(tmp_path), ["train"], cuda_devices=8, run_id="r", env={}) is None
    # auto on a machine without a GPU, or with train.device cpu: one process
    assert launch_command(_cfg(tmp_path, nproc_per_node="auto"), ["train"], 0, "r", env={}) is None
    assert processes_per_node("auto", "cpu", cuda_devices=4) == 1
    assert processes_per_node("auto", "auto", cuda_devices=4) == 4


def test_one_machine_several_processes(tmp_path):
    cmd = launch_command(_cfg(tmp_path, nproc_per_node="auto"), ["--project", "/p", "train"], 4, "r", env={})
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=4", "--standalone",
                       "-m", "mtl.cli", "--project", "/p", "train"]
    # the processes torchrun starts run the stage itself, never torchrun again
    assert launch_command(_cfg(tmp_path, nproc_per_node=4), ["train"], 4, "r", env={"TORCHELASTIC_RUN_ID": "x"}) is None


def test_several_machines_meet_at_the_rendezvous_of_the_run(tmp_path):
    cfg = _cfg(tmp_path, nproc_per_node=2, nnodes=3, rdzv_endpoint="gpu0.internal:29400")
    cmd = launch_command(cfg, ["train"], 2, "manual__2026-11-30T10:00:00+00:00", env={})
    assert "--standalone" not in cmd
    assert cmd[3:8] == ["--nproc-per-node=2", "--nnodes=3", "--rdzv-backend=c10d",
                        "--rdzv-endpoint=gpu0.internal:29400", "--rdzv-id=manual__2026-11-30T10_00_00_00_00"]


@pytest.mark.parametrize("bad, message", [
    ({"nnodes": 2}, "set rdzv_endpoint"),
    ({"nnodes": 2, "rdzv_endpoint": "gpu0"}, "not host:port"),
    ({"nproc_per_node": 0}, "nproc_per_node"),
])
def test_bad_settings_name_the_key(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, **bad)
