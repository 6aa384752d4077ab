"""The benchmark scripts on a params file they cannot measure (a project's own after `mtl init`,
a typo in --set, a missing file): a one-line error naming the file and what to pass, before any
work, never a traceback (scripts/benchparams.py)."""

import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

SCRIPTS = ["bench_preprocess", "bench_validation", "bench_scoring", "bench_train", "quality_table"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture
def own_params(tmp_path):
    """What `mtl init --from` writes: the user's files, the user's labels."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"source": str(tmp_path / "shop.parquet")},
                                    "tasks": [{"name": "clicked", "type": "binary"}]}))
    return path


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_project_own_params_is_refused_with_the_file_to_pass(script, own_params):
    proc = _run(f"scripts/{script}.py", "--params", str(own_params))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert str(own_params) in proc.stderr and "shop.parquet" in proc.stderr
    assert "git show HEAD:params.yaml" in proc.stderr  # how to get the file the benchmark needs


@pytest.mark.parametrize("script", ["bench_supply_chain", "bench_trees"])
def test_the_supply_chain_benchmarks_name_their_preset_and_a_bad_override(script, own_params):
    proc = _run(f"scripts/{script}.py", "--params", str(own_params))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "configs/supply_chain.yaml" in proc.stderr
    typo = _run(f"scripts/{script}.py", "--set", "train.epochz=3")
    assert typo.returncode != 0 and "Traceback" not in typo.stderr
    assert "train.epochz: unknown key" in typo.stderr
    no_value = _run(f"scripts/{script}.py", "--set", "train.epochs")
    assert no_value.returncode != 0 and "KEY=VALUE" in no_value.stderr


def test_a_missing_params_file_is_named(tmp_path):
    proc = _run("scripts/bench_validation.py", "--params", str(tmp_path / "nope.yaml"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'nope.yaml'}: no such file" in proc.stderr


def test_the_supply_chain_benchmark_names_each_seeds_gains_beyond_noise(monkeypatch):
    """A task counts as better (worse) than its single-task version only where its paired
    interval lies wholly above (below) zero; a seed without single-task models prints nothing."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench_supply_chain

    def seed(n, intervals, delta_m=0.0123):
        tasks = {t: {"gain_interval": iv} for t, iv in intervals.items()}
        return {"seed": n, "evaluation": {"mtl_gain": {"delta_m": delta_m, "tasks": tasks}}}

    lines = bench_supply_chain.per_seed_gain([
        seed(1, {"demand": [0.001, 0.01], "stockout": [-0.002, 0.003], "late_delivery": [-0.02, -0.001]}),
        seed(2, {"demand": None}),
        {"seed": 3, "evaluation": {}}])
    assert lines[2] == ("- seed 1: Δm +1.23%; better than single-task beyond noise on demand; "
                        "worse beyond noise on late_delivery")
    assert lines[3].endswith("on no task; worse beyond noise on no task") and len(lines) == 4
    assert bench_supply_chain.per_seed_gain([{"seed": 3, "evaluation": {}}]) == []
