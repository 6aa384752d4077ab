"""The ``model`` and ``train`` sections: the network and how it is trained."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mtl.config.base import Frozen, PositiveInt, registered
from mtl.names import INTERACTIONS, WEIGHTINGS


class SequenceModel(Frozen):
    """The history encoder (data.schema.sequence): a small Transformer over the history, then
    target attention (the candidate item attends over it); its output joins the input of the
    experts of every architecture."""

    layers: Annotated[int, Field(ge=0)] = 1  # Transformer encoder layers (0: target attention only)
    # Attention heads; must divide model.embedding_dim. One 16-wide head is 1.7x faster on a CPU
    # than two 8-wide ones (flash attention is per head), at the same parameter count.
    heads: PositiveInt = 1
    # How the (encoded) history becomes one vector: attention (the candidate attends over it,
    # DIN/BST) or mean (the average of its elements: an estimate of the user's taste whose
    # inner product with the candidate, under model.interaction fm, is a dot-product affinity).
    pooling: Literal["attention", "mean"] = "attention"


class TemporalModel(Frozen):
    """The temporal encoder of a panel's lag window (data.panel.history): a TCN (Bai et al. 2018),
    residual blocks of two dilated causal 1-D convolutions each, over the window's channels;
    its last step joins the input of the experts of every architecture. The receptive field,
    1 + 2 (kernel - 1) sum(dilations) days, should cover data.panel.lookback."""

    filters: PositiveInt = 32
    kernel: Annotated[int, Field(ge=2)] = 3
    dilations: tuple[PositiveInt, ...] = (1, 2, 4, 8, 16)  # one residual block each
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * (self.kernel - 1) * sum(self.dilations)


class CrossConfig(Frozen):
    """DCN-V2 cross layers (model.interaction dcn_v2)."""

    layers: PositiveInt = 2
    rank: PositiveInt | None = 32  # low-rank W = U V^T of this rank; null: full rank


class FMConfig(Frozen):
    """Factorization-machine products (model.interaction fm)."""

    heads: PositiveInt = 1  # products of this many equal parts of each embedding, per pair of fields


class ModelConfig(Frozen):
    architecture: str = "mmoe"
    # Explicit feature interactions in front of the architecture (mtl/models/interactions/):
    # none | fm (pairwise inner products of the fields) | dcn_v2 (cross layers).
    interaction: str = "none"
    cross: CrossConfig = CrossConfig()
    fm: FMConfig = FMConfig()
    embedding_dim: PositiveInt = 16
    # Shared experts (MMoE, CGC, PLE); the shared bottom and single-task models use one MLP of
    # expert_hidden instead.
    experts: PositiveInt = 4
    expert_hidden: tuple[PositiveInt, ...] = (128, 64)
    tower_hidden: tuple[PositiveInt, ...] = (64,)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # Batch norm after every hidden layer of experts and towers ("batch"), or none.
    norm: Literal["batch", "none"] = "none"
    # CGC / PLE: experts owned by each task, and PLE's number of extraction levels.
    task_experts: PositiveInt = 1
    levels: PositiveInt = 2
    # Feed the scenario (data.schema.scenario, when it is a categorical feature) to the gates.
    scenario_gating: bool = False
    # AITM: weight of the calibrator that penalises a child task predicted above its parent.
    calibration_weight: Annotated[float, Field(ge=0.0)] = 0.6
    sequence: SequenceModel = SequenceModel()
    # Width of the trainable projection of each text column's frozen sentence vector.
    text_dim: PositiveInt = 16
    temporal: TemporalModel = TemporalModel()  # used when the data has a panel's lag window

    @field_validator("interaction")
    @classmethod
    def _interaction_registered(cls, v: str) -> str:
        return registered(v, INTERACTIONS, "interaction")

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.embedding_dim % self.sequence.heads:
            raise ValueError(f"sequence.heads ({self.sequence.heads}) must divide embedding_dim ({self.embedding_dim})")
        if self.embedding_dim % self.fm.heads:
            raise ValueError(f"fm.heads ({self.fm.heads}) must divide embedding_dim ({self.embedding_dim})")
        return self


class WeightingConfig(Frozen):
    """How per-task losses (or their gradients) become one update (mtl/training/weighting/)."""

    # static (each task's `weight`) | equal | uncertainty | dwa | gradnorm | pcgrad | cagrad | famo
    method: str = "static"
    dwa_temperature: Annotated[float, Field(gt=0.0)] = 2.0  # larger: weights closer to equal
    gradnorm_alpha: Annotated[float, Field(ge=0.0)] = 1.5  # how strongly training rates are restored
    cagrad_c: Annotated[float, Field(ge=0.0)] = 0.4  # radius around the mean gradient; 0 = the mean
    famo_lr: Annotated[float, Field(gt=0.0)] = 0.025  # learning rate of FAMO's task logits
    famo_decay: Annotated[float, Field(ge=0.0)] = 0.01  # weight decay of FAMO's task logits

    @field_validator("method")
    @classmethod
    def _registered(cls, v: str) -> str:
        return registered(v, WEIGHTINGS, "weighting")


class DistributedConfig(Frozen):
    """Data-parallel training through torchrun, which `mtl train` launches itself when more than
    one process is asked for: so `dvc repro`, `mtl run` and the Airflow training task all get it."""

    # Training processes on each machine: a number, or "auto" for one per visible CUDA GPU (a
    # single process on a machine without one). Several CPU processes (gloo) also work.
    nproc_per_node: PositiveInt | Literal["auto"] = 1
    # Machines taking part. Above 1 every machine runs `mtl train` on the same workspace (shared
    # storage) and params; they meet at rdzv_endpoint (torchrun's c10d rendezvous).
    nnodes: PositiveInt = 1
    rdzv_endpoint: str | None = None  # host:port of one of the machines, reachable from all

    @model_validator(mode="after")
    def _rendezvous(self) -> "DistributedConfig":
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError(f"nnodes is {self.nnodes}: set rdzv_endpoint (host:port of one of the machines)")
        if self.rdzv_endpoint and not re.fullmatch(r"[\w.\-\[\]:]+:\d+", self.rdzv_endpoint):
            raise ValueError(f"rdzv_endpoint {self.rdzv_endpoint!r} is not host:port")
        return self


class TrainConfig(Frozen):
    epochs: PositiveInt = 4
    batch_size: PositiveInt = 2048
    # Rows held in memory for shuffling; a training split no larger than this is loaded once.
    shuffle_buffer_rows: PositiveInt = 4_000_000
    learning_rate: Annotated[float, Field(gt=0.0)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    # L2 penalty on the embedding rows each batch looks up (mean over rows of their squared
    # norm): ids seen often are held back as often as they are trained, while weight_decay
    # would shrink every row, the many never-seen-again ones included, at every step.
    embedding_l2: Annotated[float, Field(ge=0.0)] = 0.0
    # The embedding table's optimizer: adam (with the rest of the model: every row moves every
    # step, on its momentum when not looked up) or lazy_adam (only the rows a batch looked up, with
    # per-row moments; weight_decay then leaves the table alone: use embedding_l2).
    embedding_optimizer: Literal["adam", "lazy_adam"] = "adam"
    # Learning rate over the run: constant, or cosine (from learning_rate down to 0 at the end
    # of the last of `epochs`, step by step): large steps while the embeddings are far from
    # anything, small ones once they start to fit the training rows.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # Epochs without improvement of the validation metric before stopping early.
    patience: PositiveInt = 1
    # An epoch repeats the training split (reshuffled each pass) until it has taken at least this
    # many optimizer steps; null: one pass. A small dataset then gets as many updates between
    # validation checks, and in all, as a large one instead of stopping after a few dozen steps;
    # on data with more steps per pass than this it changes nothing.
    min_steps_per_epoch: PositiveInt | None = None
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 autocast where the GPU or CPU (AMX / AVX-512 BF16) has bf16 hardware, else fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch.compile the model (a one-off compile cost, then fused kernels).
    compile: bool = False
    # 0 means: use every core torch sees.
    num_threads: Annotated[int, Field(ge=0)] = 0
    progress: bool = True
    weighting: WeightingConfig = WeightingConfig()
    distributed: DistributedConfig = DistributedConfig()
