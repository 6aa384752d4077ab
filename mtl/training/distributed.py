"""Data-parallel training across processes, GPUs and nodes, launched by ``torchrun``.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; :func:`from_env` joins the process group
(NCCL on GPUs, gloo on CPUs) and everything else asks the returned :class:`Dist`. Without
torchrun it is a single process and every method here does nothing (nanoGPT style), so the
same training code runs on a laptop, one GPU and many. Each rank trains on its own disjoint
slice of every shuffled batch group, and DistributedDataParallel averages gradients, so the
model every rank holds stays identical.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, logs to MLflow and prints progress."""
        return self.rank == 0

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def rows(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's share of a permutation, the same length on every rank (collectives must
        run the same number of steps everywhere, so the remainder is dropped)."""
        if not self.enabled:
            return perm
        per_rank = len(perm) // self.world
        return perm[self.rank * per_rank : (self.rank + 1) * per_rank]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def from_env(device_type: str = "cpu") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank, world, local_rank)


# -- launching --------------------------------------------------------------------------------------
# `mtl train` starts torchrun itself when train.distributed asks for more than one process, so
# every way of running the stage (dvc repro, mtl run, the Airflow task on a GPU worker) gets it.

LAUNCHED_ENV = "TORCHELASTIC_RUN_ID"  # torchrun sets it in every process it starts


def processes_per_node(requested: int | str, device: str, cuda_devices: int) -> int:
    """``train.distributed.nproc_per_node`` resolved: "auto" is one per visible GPU (none: 1)."""
    if requested != "auto":
        return int(requested)
    return max(1, cuda_devices) if device != "cpu" else 1


def launch_command(cfg, argv: list[str], cuda_devices: int, run_id: str | None,
                   env: dict[str, str] | None = None) -> list[str] | None:
    """The torchrun command that runs ``argv`` (arguments of ``python -m mtl.cli``) as the
    processes ``cfg.train.distributed`` asks for, or None: one process, or already under torchrun.

    Several machines meet at ``rdzv_endpoint`` under one rendezvous id, the pipeline run's (the
    Airflow run id, which the training task and its peers share), so a stale peer of an earlier
    run cannot join this one.
    """
    env = os.environ if env is None else env
    if LAUNCHED_ENV in env:
        return None
    dist = cfg.train.distributed
    nproc = processes_per_node(dist.nproc_per_node, cfg.train.device, cuda_devices)
    if nproc * dist.nnodes == 1:
        return None
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if dist.nnodes == 1:
        cmd.append("--standalone")
    else:
        rdzv_id = re.sub(r"[^\w.-]", "_", run_id or "mtl-train")[:128]
        cmd += [f"--nnodes={dist.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={dist.rdzv_endpoint}",
                f"--rdzv-id={rdzv_id}"]
    return [*cmd, "-m", "mtl.cli", *argv]
