"""Precision and compilation options: they change speed, never the ability to learn."""

import numpy as np
import pytest
import torch

from mtl.training import loop
from mtl.training.device import cpu_has_bf16, select_runtime
from tests.model.test_model import SPEC, TASKS, config, synthetic_arrays

SPEC_T = type(SPEC)(SPEC.cardinalities, SPEC.n_numeric, SPEC.tasks, ("binary", "binary", "regression"))


def _fit(**train):
    cfg = config(epochs=2, patience=2, **train)
    return loop.train(synthetic_arrays(3000, 0), synthetic_arrays(800, 1), SPEC_T, TASKS, cfg)


def test_auto_precision_follows_the_cpu():
    expected = torch.bfloat16 if cpu_has_bf16() else None
    assert select_runtime("cpu").amp_dtype == expected
    assert select_runtime("cpu", precision="fp32").amp_dtype is None


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
