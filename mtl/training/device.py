"""Device and precision chosen once, as objects that do nothing when not needed (nanoGPT style)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    # Mixed precision: bf16 autocast on CUDA (no loss scaling needed with bf16); off on CPU,
    # where most machines have no fast bf16 and fp32 is both faster and exact.
    amp_dtype: torch.dtype | None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def select_runtime(requested: str = "auto", num_threads: int = 0, local_rank: int = 0) -> Runtime:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    use_cuda = requested == "cuda" or (requested == "auto" and torch.cuda.is_available())
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    elif not use_cuda:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        device = torch.device("cuda", local_rank)  # one GPU per torchrun process
        torch.cuda.set_device(device)
        return Runtime(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    return Runtime(torch.device("cpu"), None)
