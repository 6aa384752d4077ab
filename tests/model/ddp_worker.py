"""Run by tests/model/test_ddp.py under `torchrun --nproc_per_node=2`: one rank's training."""

import json
import os
import sys

import torch

sys.path.insert(0, os.environ["MTL_REPO"])

from mtl.training import loop  # noqa: E402
from tests.model.test_model import SPEC, TASKS, config, synthetic_arrays  # noqa: E402

SPEC_T = type(SPEC)(SPEC.cardinalities, SPEC.n_numeric, SPEC.tasks, ("binary", "binary", "regression"))

method = sys.argv[2] if len(sys.argv) > 2 else "static"
cfg = config(epochs=2, patience=2, num_threads=1, weighting={"method": method})
result = loop.train(synthetic_arrays(4000, 0), synthetic_arrays(1000, 1), SPEC_T, TASKS, cfg)
params = torch.cat([p.detach().flatten() for p in result.model.parameters()])
rank = int(os.environ["RANK"])
out = {
    "rank": rank,
    "world": int(os.environ["WORLD_SIZE"]),
    "checksum": float(params.double().sum()),
    "params": params.tolist()[:50],
    "history": result.history,
    "samples_per_second": result.samples_per_second,
    "seen": result.samples_per_second * result.seconds,
}
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as fh:
    json.dump(out, fh)
torch.distributed.destroy_process_group()
