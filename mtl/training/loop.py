"""The training loop: columnar batches, masked multi-task loss, early stopping on validation.

No per-sample Dataset or collate: a group of shards is turned into tensors at once and a batch
is one fancy-index into them, which is what makes tabular training fast on a CPU. Shards are
visited in a fresh random order each epoch and rows are shuffled across the shards held in
memory together (``train.shuffle_buffer_rows``); a split that fits is loaded once.
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mtl.config import Config, ModelConfig, TaskConfig
from mtl.data.features import Arrays
from mtl.data.features.shards import Shards
from mtl.evaluation import metrics
from mtl.models import get_architecture
from mtl.models.layers import InputSpec
from mtl.training.device import Runtime, select_runtime
from mtl.training.distributed import Dist, from_env
from mtl.training.checkpoint import load_training_state, save_training_state
from mtl.training.losses import TaskLosses
from mtl.training.optim import Schedule, build_optimizer
from mtl.training.weighting import get_weighting
from mtl.training.weighting.base import gradient_conflict


@dataclass
class TrainResult:
    model: torch.nn.Module
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_second: float = 0.0
    device: str = "cpu"
    resumed_from: int = 0  # the epoch a killed run resumed at (0: started from scratch)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def build_model(spec: InputSpec, model: ModelConfig) -> torch.nn.Module:
    return get_architecture(model.architecture)(spec, model)


def _tensors(a: Arrays, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(cat, num, seq, text, labels, mask) on ``device``."""
    # np.array copies out of the read-only memory map into memory torch may own; on a GPU the
    # copy goes through pinned memory so it does not block the host.
    fields = (a.cat, a.num, a.seq, a.text, a.labels, a.mask)
    if device.type == "cuda":
        return tuple(torch.from_numpy(np.array(x)).pin_memory().to(device, non_blocking=True) for x in fields)
    return tuple(torch.from_numpy(np.array(x)).to(device) for x in fields)


class TextVectors:
    """The transform's sentence vectors on the training device, gathered per batch: the shards
    hold one row index per text column, so the vectors are stored once, not once per row."""

    def __init__(self, table: np.ndarray | None, device: torch.device):
        self.table = (torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)).to(device)
                      if table is not None and table.size else None)

    def __call__(self, seq: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The model's history and text inputs for a batch (None for what the data lacks)."""
        return (seq if seq.shape[1] else None), (self.table[text.long()] if self.table is not None else None)


class _Batches:
    """Shuffled mini-batches over a split, holding at most ``buffer_rows`` rows (plus one shard)."""

    def __init__(self, data: Shards | Arrays, batch_size: int, buffer_rows: int, device: torch.device,
                 generator: torch.Generator, dist: Dist = Dist(), text_table: np.ndarray | None = None,
                 min_steps: int | None = None):
        # Every rank draws the same permutations (same seed) and keeps its own slice, so a
        # global batch of batch_size rows is split across the ranks.
        self.dist = dist
        batch_size = max(1, batch_size // dist.world)
        self.data, self.batch_size, self.device, self.generator = data, batch_size, device, generator
        self.buffer_rows = buffer_rows
        self.inputs = TextVectors(text_table, device)
        self.cached = None
        if isinstance(data, Arrays) or len(data) <= buffer_rows:
            self.cached = _tensors(data if isinstance(data, Arrays) else data.all(), device)
        self.one_pass = -(-(len(data) // dist.world) // self.batch_size)  # steps
        # passes per epoch: enough for min_steps (train.min_steps_per_epoch), at least one
        self.passes = max(1, -(-min_steps // max(self.one_pass, 1))) if min_steps else 1

    def __len__(self) -> int:
        return self.passes * self.one_pass

    def _groups(self):
        if self.cached is not None:
            yield self.cached
            return
        order = torch.randperm(self.data.n_shards, generator=self.generator).tolist()
        group: list[Arrays] = []
        rows = 0
        for i in order:
            group.append(self.data.load(i))
            rows += len(group[-1])
            if rows >= self.buffer_rows:
                yield _tensors(Arrays.concat(group), self.device)
                group, rows = [], 0
        if group:
            yield _tensors(Arrays.concat(group), self.device)

    def __iter__(self):
        for _ in range(self.passes):
            yield from self._one_pass()

    def _one_pass(self):
        for cat, num, seq, text, labels, mask in self._groups():
            perm = self.dist.rows(torch.randperm(len(cat), generator=self.generator)).to(self.device)
            for start in range(0, len(cat), self.batch_size):
                idx = perm[start : start + self.batch_size]
                if len(idx) < 2:  # batch norm needs two rows; a lone leftover row is skipped
                    continue
                yield (cat[idx], num[idx], *self.inputs(seq[idx], text[idx]), labels[idx], mask[idx])


@torch.no_grad()
def predict_raw(model: torch.nn.Module, a: Arrays, runtime: Runtime | None = None,
                batch_size: int | None = None, text_table: np.ndarray | None = None) -> np.ndarray:
    """Model outputs (logits / standardised values), shape (rows, tasks). ``text_table``: the
    transform's sentence vectors, when it has text columns."""
    runtime = runtime or Runtime(torch.device("cpu"), None)
    if batch_size is None:
        # On CPU a batch whose activations stay in cache is over twice as fast as a large one
        # (MMoE, 200k rows on 2 cores: 0.44 s at 4-8k rows per batch, 1.14 s at 65k); a GPU
        # wants large batches to fill it.
        batch_size = 65536 if runtime.device.type == "cuda" else 8192
    model.eval()
    outs = []
    inputs = TextVectors(text_table, runtime.device)
    for start in range(0, len(a), batch_size):
        cat, num, seq, text = (torch.from_numpy(np.array(x[start : start + batch_size])).to(runtime.device)
                               for x in (a.cat, a.num, a.seq, a.text))
        with runtime.autocast():
            outs.append(model(cat, num, *inputs(seq, text)).float().cpu())
    return torch.cat(outs).numpy() if outs else np.zeros((0, len(model.spec.tasks)), np.float32)


def validation_scores(raw: np.ndarray, a: Arrays, tasks: Sequence[TaskConfig]) -> dict[str, float]:
    """Per-task validation metrics on the model's own scale: AUC for binary tasks, MSE of the
    mean for regression ones (a log-link output exponentiated first), the pinball loss of a
    quantile task."""
    out = {}
    for j, t in enumerate(tasks):
        m = np.asarray(a.mask[:, j])
        y, pred = np.asarray(a.labels[:, j])[m], raw[m, j]
        if t.type == "binary":
            out[f"val_auc_{t.name}"] = metrics.auc(y, pred)
        elif t.loss == "pinball":
            diff = y - pred
            out[f"val_pinball_{t.name}"] = float(np.mean(np.maximum(t.quantile * diff, (t.quantile - 1) * diff))) \
                if m.any() else None
        else:
            pred = np.exp(np.minimum(pred, 30.0)) if t.log_link else pred
            out[f"val_mse_{t.name}"] = float(np.mean((y - pred) ** 2)) if m.any() else None
    return out


def _selection_score(scores: dict[str, float | None], tasks: Sequence[TaskConfig], gated: tuple[str, ...] = ()) -> float:
    """Early-stopping criterion: the mean validation AUC over the binary tasks the gate judges
    (``gated``: gate.tasks; every binary task when none of them is gated), so the epoch kept is
    the one the promotion gate would think best; minus the mean regression loss if no task is binary."""
    binary = [t.name for t in tasks if t.type == "binary"]
    chosen = [n for n in binary if n in gated] or binary
    aucs = [scores[f"val_auc_{n}"] for n in chosen]
    aucs = [a for a in aucs if a is not None]
    if aucs:
        return float(np.mean(aucs))
    losses = [v for k, v in scores.items() if k.startswith(("val_mse_", "val_pinball_")) and v is not None]
    return -float(np.mean(losses)) if losses else 0.0


@dataclass
class Resume:
    """Checkpointing of a training that may be killed: the full state (model, optimizer, loss
    weighting, RNG, best weights so far, history) is saved to ``state_path`` after every epoch,
    and a run that finds a state with the same ``fingerprint`` (same data, model and training
    config) resumes after its last epoch, so it ends with the same model."""

    state_path: Path
    fingerprint: str = ""
    run_id: str = ""  # the MLflow run the state belongs to: a resumed run goes on in it
    replay: bool = True  # report the resumed epochs' records again through on_epoch (a new MLflow run)
    saved: dict | None = None  # the state, when the caller has loaded it already

    def load(self) -> dict | None:
        return self.saved if self.saved is not None else load_training_state(self.state_path, self.fingerprint)


class _Session:
    """One training's collaborators: the runtime (device, precision), the distributed setup, the
    model and its compiled step, the loss weighting, optimizer and schedule, the batches."""

    def __init__(self, train_arrays: Shards | Arrays, spec: InputSpec, tasks: Sequence[TaskConfig], cfg: Config,
                 text_table: np.ndarray | None):
        tc = self.tc = cfg.train
        self.tasks = tasks
        self.runtime = select_runtime(tc.device, tc.num_threads, int(os.environ.get("LOCAL_RANK", "0")), tc.precision)
        self.dist = from_env(self.runtime.device.type)
        seed_everything(tc.seed)
        self.model = build_model(spec, cfg.model).to(self.runtime.device)
        step = self.dist.wrap(_Forward(self.model), self.runtime.device)  # DistributedDataParallel under torchrun
        self.step = torch.compile(step) if tc.compile else step
        self.weighting = get_weighting(tc.weighting.method)(tasks, tc.weighting, self.model, self.runtime.device)
        self.optimizer = build_optimizer(self.model, self.weighting.parameters(), tc)
        self.generator = torch.Generator().manual_seed(tc.seed)
        self.batches = _Batches(train_arrays, tc.batch_size, tc.shuffle_buffer_rows, self.runtime.device,
                                self.generator, self.dist, text_table, tc.min_steps_per_epoch)
        self.schedule = Schedule(self.optimizer, tc.lr_schedule, tc.epochs * len(self.batches))
        self.losses = TaskLosses.for_tasks(tasks, self.runtime.device)
        self.stopwatch = _Stopwatch(self.runtime.device)
        self.progress = _progress(tc.progress and self.dist.is_main)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "weighting": self.weighting.state_dict(),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()}

    def restore(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        self.weighting.load_state_dict(saved["weighting"])
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])

    def epoch(self, epoch: int) -> tuple[dict, int]:
        """One epoch (one pass over the training split, or more with train.min_steps_per_epoch):
        (its part of the epoch's record, samples seen)."""
        tasks, tc, model = self.tasks, self.tc, self.model
        model.train()
        sums = torch.zeros(len(tasks), device=self.runtime.device)
        weight_sums = torch.zeros(len(tasks), device=self.runtime.device)
        method_stats: dict[str, float] = {}
        cosines: dict[tuple[int, int], float | None] = {}
        steps = seen = 0
        for cat, num, seq, text, labels, mask in self.progress(self.batches, desc=f"epoch {epoch}/{tc.epochs}"):
            # represent / decode rather than forward: gradient methods act on the shared part's output.
            with self.runtime.autocast():
                out, shared = self.step(cat, num, seq, text)
                extra = _add(model.extra_loss(out, labels, mask), _embedding_penalty(shared, tc.embedding_l2))
            losses = self.losses(out, labels, mask)
            if steps == 0 and len(tasks) > 1:  # one batch per epoch keeps the diagnostic cheap
                cosines = gradient_conflict(losses, shared)
            self.optimizer.zero_grad(set_to_none=True)
            with self.stopwatch:
                stats = self.weighting.backward(losses, shared, model, extra, mask.any(0))
            self.optimizer.step()
            self.schedule.step()
            with self.stopwatch:
                # FAMO recomputes the batch's losses after the step; other methods never call this.
                self.weighting.after_step(functools.partial(_batch_losses, model, self.runtime, cat, num, seq, text,
                                                            labels, mask, self.losses))
            weight_sums += stats.pop("weights")
            for k, v in stats.items():
                method_stats[k] = method_stats.get(k, 0.0) + float(v)
            sums += losses.detach()
            steps += 1
            seen += len(cat)
        n = max(steps, 1)
        self.weighting.epoch_end(sums / n)
        record = {"learning_rate": self.optimizer.param_groups[0]["lr"]}
        record.update({f"train_loss_{t.name}": v for t, v in zip(tasks, (sums / n).tolist())})
        record.update(_weighting_record(tasks, weight_sums / n, self.stopwatch.take_ms() / n,
                                        {k: v / n for k, v in method_stats.items()}, cosines))
        return record, seen


@dataclass
class _Best:
    """Early stopping: the best validation score so far, its epoch and weights, and how many
    epochs in a row have not beaten it."""

    state: dict | None = None
    score: float = -float("inf")
    epoch: int = 0
    bad_epochs: int = 0

    def update(self, score: float, epoch: int, model: torch.nn.Module) -> None:
        if score > self.score:
            self.state, self.score, self.epoch, self.bad_epochs = copy.deepcopy(model.state_dict()), score, epoch, 0
        else:
            self.bad_epochs += 1

    def saved(self) -> dict:
        return {"best_model": self.state, "best_score": self.score, "best_epoch": self.epoch,
                "bad_epochs": self.bad_epochs}

    @classmethod
    def from_saved(cls, saved: dict) -> _Best:
        return cls(saved["best_model"], saved["best_score"], saved["best_epoch"], saved["bad_epochs"])


def train(train_arrays: Shards | Arrays, val_arrays: Arrays, spec: InputSpec, tasks: Sequence[TaskConfig], cfg: Config,
          on_epoch: Callable[[dict], None] | None = None, resume: Resume | None = None,
          text_table: np.ndarray | None = None) -> TrainResult:
    """Train with early stopping on validation; returns the best epoch's model.

    ``resume``: save the state after every epoch and pick up a killed run's (see Resume).
    ``text_table``: the transform's sentence vectors (``Transform.text_table()``), when it has
    text columns.
    """
    tc = cfg.train
    run = _Session(train_arrays, spec, tasks, cfg, text_table)
    best, history, seen, started = _Best(), [], 0, time.perf_counter()
    first_epoch, stopped, resumed_from = 1, False, 0
    saved = resume.load() if resume is not None else None
    if saved is not None:
        run.restore(saved)
        best = _Best.from_saved(saved)
        history, seen, stopped = saved["history"], saved["seen"], saved["stopped"]
        first_epoch = resumed_from = saved["epoch"] + 1
        for record in history if resume.replay else ():  # a new run's curves start where the killed one's ended
            if on_epoch is not None:
                on_epoch(record)
    seen_before = seen  # samples/s counts this process's work only
    for epoch in range(first_epoch, 0 if stopped else tc.epochs + 1):
        trained, n = run.epoch(epoch)
        seen += n
        scores = validation_scores(predict_raw(run.model, val_arrays, run.runtime, text_table=text_table),
                                   val_arrays, tasks)
        score = _selection_score(scores, tasks, tuple(cfg.gate.tasks))
        record = {"epoch": epoch, "val_selection_score": score, **scores, **trained}
        history.append(record)
        if on_epoch is not None and run.dist.is_main:
            on_epoch(record)
        best.update(score, epoch, run.model)
        stopped = best.bad_epochs >= tc.patience
        if resume is not None and run.dist.is_main:
            save_training_state(resume.state_path, {
                "fingerprint": resume.fingerprint, "epoch": epoch, "stopped": stopped, "seen": seen, **run.state(),
                **best.saved(), "history": history, "mlflow_run_id": resume.run_id})
        if stopped:
            break
    seconds = time.perf_counter() - started
    if best.state is not None:
        run.model.load_state_dict(best.state)
    run.model.cpu().eval()
    return TrainResult(run.model, best.epoch, best.score, history, seconds, (seen - seen_before) / max(seconds, 1e-9),
                       str(run.runtime.device), resumed_from)


class _Forward(torch.nn.Module):
    """represent + decode as one forward, so DistributedDataParallel sees (and syncs) the whole
    step; the shared representation is returned too, for the gradient methods."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, cat: torch.Tensor, num: torch.Tensor, seq: torch.Tensor | None = None,
                text: torch.Tensor | None = None):
        shared = self.model.represent(cat, num, seq, text)
        return self.model.decode(shared), shared


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


def _embedding_penalty(shared, coefficient: float) -> torch.Tensor | None:
    """train.embedding_l2 times the mean squared norm of the rows this batch looked up."""
    if not coefficient or shared.emb is None:
        return None
    return coefficient * shared.emb.float().pow(2).sum(-1).sum(-1).mean()


@torch.no_grad()
def _batch_losses(model, runtime: Runtime, cat, num, seq, text, labels, mask, losses: TaskLosses) -> torch.Tensor:
    with runtime.autocast():
        out = model(cat, num, seq, text)
    return losses(out, labels, mask)


def _weighting_record(tasks: Sequence[TaskConfig], weights: torch.Tensor, ms_per_step: float, stats: dict[str, float],
                      cosines: dict[tuple[int, int], float | None]) -> dict:
    """The epoch's loss-balancing diagnostics: mean task weights, time per step, gradient conflict."""
    record: dict = {f"weight_{t.name}": w for t, w in zip(tasks, weights.tolist())}
    record["weighting_ms_per_step"] = ms_per_step
    record.update({f"weighting_{k}": v for k, v in stats.items()})
    record.update({f"grad_cosine_{tasks[i].name}_{tasks[j].name}": c for (i, j), c in cosines.items()})
    defined = [c for c in cosines.values() if c is not None]
    if cosines:
        record["grad_cosine_mean"] = float(np.mean(defined)) if defined else None
    return record


class _Stopwatch:
    """Milliseconds spent inside ``with stopwatch:`` blocks, without a device sync per step.

    On CUDA the blocks are timed with events, read (one sync) when the epoch's total is taken;
    on the CPU with the wall clock.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.ms = 0.0
        self.spans: list = []

    def __enter__(self):
        if self.cuda:
            self.spans.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self.spans[-1][0].record()
        else:
            self.started = time.perf_counter()

    def __exit__(self, *exc):
        if self.cuda:
            self.spans[-1][1].record()
        else:
            self.ms += (time.perf_counter() - self.started) * 1000

    def take_ms(self) -> float:
        if self.spans:
            torch.cuda.synchronize()
            self.ms += sum(start.elapsed_time(end) for start, end in self.spans)
        ms, self.ms, self.spans = self.ms, 0.0, []
        return ms


def _progress(enabled: bool):
    if not enabled:
        return lambda it, desc=None: it
    from tqdm.auto import tqdm

    # disable=None: a live bar on a terminal, nothing in captured logs (Airflow, CI), where the
    # per-epoch summary line the train stage prints is the readable progress record.
    return lambda it, desc=None: tqdm(it, desc=desc, unit="batch", leave=False, mininterval=0.5, disable=None)
