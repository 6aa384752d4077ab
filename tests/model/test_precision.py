"""Precision and compilation options: they change speed, never the ability to learn."""

import numpy as np
import pytest
import torch

from mtl.training import loop
from mtl.training.device import auto_threads, cpu_has_bf16, select_runtime
from tests.model.test_model import SPEC, TASKS, config, synthetic_arrays

SPEC_T = type(SPEC)(SPEC.cardinalities, SPEC.n_numeric, SPEC.tasks, ("binary", "binary", "regression"))


def _fit(**train):
    cfg = config(epochs=2, patience=2, **train)
    return loop.train(synthetic_arrays(3000, 0), synthetic_arrays(800, 1), SPEC_T, TASKS, cfg)


def test_auto_precision_follows_the_cpu():
    expected = torch.bfloat16 if cpu_has_bf16() else None
    assert select_runtime("cpu").amp_dtype == expected
    assert select_runtime("cpu", precision="fp32").amp_dtype is None


def test_threads_follow_omp_num_threads_and_torchrun_shares_the_cores(monkeypatch):
    import os

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert auto_threads() == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a scheduler's share of a busy machine
    assert auto_threads() == 1
    before = torch.get_num_threads()
    try:
        select_runtime("cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("OMP_NUM_THREADS", "oops")
    assert auto_threads() == cores
    # under torchrun (which sets OMP_NUM_THREADS=1 itself), the machine's processes share its cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert auto_threads() == max(1, cores // 2)


def test_bf16_on_cpu_learns_where_supported():
    if not cpu_has_bf16():
        with pytest.raises(RuntimeError, match="bf16 instructions"):
            select_runtime("cpu", precision="bf16")
        return
    result = _fit(precision="bf16")
    aucs = [r["val_auc_ctr"] for r in result.history]
    assert np.isfinite(aucs).all() and aucs[-1] > 0.6


@pytest.mark.slow
def test_compiled_model_learns_like_the_eager_one():
    eager, compiled = _fit(), _fit(compile=True)
    assert compiled.history[-1]["val_auc_ctr"] == pytest.approx(eager.history[-1]["val_auc_ctr"], abs=0.02)
