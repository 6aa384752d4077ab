"""Benchmark training: this project's MMoE against torch-rechub's MMOE, in one process.

    bash scripts/bench_env.sh                                    # once: .bench-venv (project + torch-rechub)
    .bench-venv/bin/python scripts/bench_train.py                # 1M rows, 2 epochs, 2 threads
    .bench-venv/bin/python scripts/bench_train.py --rows 100000 --epochs 1   # a quick look
    .bench-venv/bin/python scripts/bench_train.py --only project --profile   # where the project's step spends time

Both models see identical data: the default synthetic log (generated once and cached in
--workdir), split and encoded by the project's own preprocessing (`mtl.data.features.preprocess.build`).
torch-rechub gets the same encoded columns (one SparseFeature per categorical input, one
DenseFeature per numeric input) and the same labels. Both use the same hyper-parameters: 8
experts of [256, 128], towers [64], embedding 16, batch 2048, Adam at learning rate 0.002 with
params.yaml's weight decay, no interaction layer, the same epochs and early-stopping patience,
the same thread count.

Time to quality (after the same-architecture table): this project with params.yaml's *own* model
and training settings (the shipped defaults a user gets) is trained with a growing budget, each
a fresh run from the same seed: one epoch over a random 10%, 20%, 30%, 50%, 75% of the training
rows, then 1, 2, ... epochs over all of them, until its test AUC is at least torch-rechub's on
every task; the wall time of that run (its validation passes included) against torch-rechub's
whole training time is the ratio reported.

Tasks: the binary tasks of params.yaml (click, add_to_cart, purchase). The dwell regression task
is left out for both models: it is defined on clicked rows only, and torch-rechub's trainer has
no per-task mask, so it would be trained on zeros for every impression without a click.

Each side is trained the way its own users train it: the project through
`mtl.training.loop.train` (columnar batches), torch-rechub through `DataGenerator`
(a per-sample Dataset and the default DataLoader collate) and `MTLTrainer.fit`. The timed part
is the training call only (data generation and preprocessing are not timed); both calls include
the same per-epoch validation pass their early stopping needs. samples/s = training rows x epochs
run / seconds. Test AUC is scikit-learn's roc_auc_score over every test row, on the project's
logits and on torch-rechub's probabilities; the oracle row scores the generator's true
probabilities.

``--sequences`` measures what the history encoder costs: the project alone (torch-rechub's
MMOE has no history input), trained twice on the same features, built with the users' histories
(data.schema.sequence, features.sequence.max_length, default 50): once without reading them,
once through the Transformer with target attention (model.sequence).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import benchparams  # scripts/, beside this file

ROOT = benchparams.ROOT
# torch-rechub's trainer draws a tqdm bar per epoch; the table at the end is what matters here.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HYPER = {
    "model.architecture": "mmoe",
    "model.experts": 8,
    "model.expert_hidden": [256, 128],
    "model.tower_hidden": [64],
    "model.embedding_dim": 16,
    "model.dropout": 0.0,
    # torch-rechub's MLP puts a BatchNorm after every Linear: the same architecture on our side.
    "model.norm": "batch",
    "model.scenario_gating": False,
    "train.batch_size": 2048,
    # torch-rechub's default: the mean of the task losses (equal weights; Adam ignores the 1/n).
    "train.weighting.method": "equal",
    "train.progress": False,
    "train.device": "cpu",
    # The same model on both sides: torch-rechub has no interaction layer and trains its
    # embeddings with dense Adam; its rate, as this comparison has always used.
    "model.interaction": "none",
    "train.embedding_optimizer": "adam",
    "train.learning_rate": 0.002,
}


class OtherLoad:
    """CPU time other processes took while a block ran, from /proc (Linux); None elsewhere.

    On a shared machine this is what makes a number trustworthy or not: with every core busy
    in torch's thread pool, another process's work does not just take its share, it stalls
    the pool at each barrier, so a little foreign load slows training a lot.
    """

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        end = self._sample()
        self.core_seconds = None
        if self.start and end:
            self.core_seconds = max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1])) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _sample() -> tuple[int, int] | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            busy = sum(int(v) for v in fields) - int(fields[3]) - int(fields[4])  # all but idle and iowait
            own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
            return busy, int(own[11]) + int(own[12])  # utime + stime of every thread of this process
        except (OSError, ValueError, IndexError):
            return None


@dataclass
class Outcome:
    name: str
    seconds: float  # the timed training call
    epochs: int  # epochs actually run (early stopping may stop sooner)
    train_rows: int
    auc: dict[str, float]
    note: str = ""
    other_core_seconds: float | None = None  # CPU time other processes used while this trained

    @property
    def samples_per_second(self) -> float:
        return self.train_rows * self.epochs / self.seconds


# ---------------------------------------------------------------------------------------------
# data: generated once, preprocessed by the project's own stage function


def bench_config(params: Path, rows: int, epochs: int, threads: int, overrides: dict | None = None,
                 hyper: dict | None = None):
    """params.yaml with the benchmark's hyper-parameters (``hyper``, default the shared
    architecture HYPER; {} keeps params.yaml's model and training settings) and only the binary
    tasks."""
    import yaml

    raw = yaml.safe_load(params.read_text()) if params.is_file() else {}
    tasks = [t for t in (raw or {}).get("tasks") or [] if t.get("type", "binary") == "binary"]
    if params.is_file() and not tasks:
        benchparams.fail(f"the benchmark trains the binary tasks, and {params} has none. Pass --params with "
                         f"{benchparams.SHIPPED['impressions']}.")
    gate = {k: v for k, v in raw.get("gate", {}).get("tasks", {}).items() if k in {t["name"] for t in tasks}}
    return benchparams.load(params, (HYPER if hyper is None else hyper) | {
        "data.synthetic.rows": rows,
        "tasks": tasks,
        "gate.tasks": gate,
        "train.epochs": epochs,
        "train.num_threads": threads,
        "train.progress": False,
    } | (overrides or {}))


def prepare(cfg, workdir: Path) -> Path:
    """The features directory for ``cfg`` (cached by the data, features and tasks settings)."""
    from mtl.data.ingest import synthetic
    from mtl.data.features.preprocess import build

    rows = cfg.data.synthetic.rows
    raw = workdir / f"raw_{rows}_{_key(cfg.data.synthetic.model_dump(mode='json'))}.parquet"
    if not raw.exists():
        started = time.perf_counter()
        synthetic.write(cfg.data.synthetic, raw)
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s -> {raw}", flush=True)
    key = _key([cfg.data.model_dump(mode="json", by_alias=True), cfg.features.model_dump(mode="json"),
                [t.model_dump(mode="json") for t in cfg.tasks]])
    out = workdir / f"features_{rows}_{key}"
    if not (out / "transform.json").exists():
        started = time.perf_counter()
        summary = build(raw, cfg, out)
        print(f"preprocessed in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items()), flush=True)
    return out


def _key(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def auc_per_task(labels: np.ndarray, mask: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {n: float(roc_auc_score(labels[mask[:, j], j], scores[mask[:, j], j])) for j, n in enumerate(names)}


def oracle_auc(features_dir: Path, cfg, test, names: list[str]) -> dict[str, float] | None:
    """AUC of the generator's true probabilities (test_raw.parquet rows are in test-shard order)."""
    import pandas as pd

    truth = {t.name: cfg.data.schema.truth.get(t.label) for t in cfg.tasks}
    if not all(truth.values()):
        return None
    df = pd.read_parquet(features_dir / "test_raw.parquet", columns=list(truth.values()))
    if len(df) != len(test):
        return None
    return auc_per_task(np.asarray(test.labels), np.asarray(test.mask), df[list(truth.values())].to_numpy(), names)


# ---------------------------------------------------------------------------------------------
# the two contestants


def run_project(cfg, transform, train, val, test, histories: bool = True) -> Outcome:
    from dataclasses import replace

    from mtl.models.layers import InputSpec
    from mtl.training import loop

    spec = InputSpec.from_transform(transform)
    if not histories:
        spec = replace(spec, seq_shares=())
    with OtherLoad() as other:
        started = time.perf_counter()
        result = loop.train(train, val, spec, transform.tasks, cfg)
        seconds = time.perf_counter() - started
    names = [t.name for t in transform.tasks]
    auc = auc_per_task(np.asarray(test.labels), np.asarray(test.mask), loop.predict_raw(result.model, test), names)
    name = "this project (mtl MMoE)" if not transform.sequence else (
        f"mtl MMoE, histories (length {transform.seq_length}, {cfg.model.sequence.layers} encoder layer(s))"
        if histories else "mtl MMoE, no histories")
    return Outcome(name, seconds, len(result.history), len(train), auc,
                   note=f"loop.train reports {result.samples_per_second:,.0f} samples/s (its clock starts after "
                        f"the split is turned into tensors)", other_core_seconds=other.core_seconds)


# Training budgets tried, as epochs over the training rows: below one epoch a run trains one
# epoch over a seeded random sample of that share of the rows (a shorter run, from scratch).
BUDGETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 3, 4)


def run_time_to_quality(cfg, transform, train, val, test, target: dict[str, float], max_epochs: int) -> Outcome:
    """This project with ``cfg`` (params.yaml's own model and training settings) trained with a
    growing budget (BUDGETS), each a fresh run from the same seed, until its test AUC is at
    least ``target`` on every task: the wall time of that run, validation passes included, is
    what a user needs to match the target. Early stopping keeps its validation rule."""
    from mtl.models.layers import InputSpec
    from mtl.training import loop

    spec = InputSpec.from_transform(transform)
    names = [t.name for t in transform.tasks]
    order = np.random.default_rng(cfg.train.seed).permutation(len(train))
    for budget in (b for b in BUDGETS if b <= max_epochs):
        rows = train if budget >= 1 else train.take(np.sort(order[: int(budget * len(train))]))
        epochs = max(1, int(budget))
        run_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs})})
        with OtherLoad() as other:
            started = time.perf_counter()
            result = loop.train(rows, val, spec, transform.tasks, run_cfg)
            seconds = time.perf_counter() - started
        auc = auc_per_task(np.asarray(test.labels), np.asarray(test.mask), loop.predict_raw(result.model, test), names)
        reached = all(auc[n] >= target[n] for n in names)
        print(f"shipped params.yaml, {budget:g} epoch(s) ({len(rows):,} rows x {epochs}): {seconds:.1f} s, AUC "
              + ", ".join(f"{n} {auc[n]:.4f}" for n in names) + (" -> reached" if reached else ""), flush=True)
        if reached or (budget >= 1 and len(result.history) < epochs):  # stopped early: more epochs change nothing
            break
    mc = cfg.model
    name = (f"this project, shipped params.yaml ({mc.architecture}, interaction {mc.interaction}, "
            f"{budget:g} epoch(s))")
    return Outcome(name, seconds, epochs, len(rows), auc, other_core_seconds=other.core_seconds,
                   note="reached torch-rechub's AUC on every task" if reached else
                   f"did NOT reach torch-rechub's AUC on every task within {max_epochs} epochs")


def time_to_quality_table(shipped: Outcome, rechub: Outcome, names: list[str]) -> str:
    """Time until each reaches torch-rechub's final AUC: torch-rechub's whole run, ours from above."""
    lines = ["| model | training rows x epochs | train s | time ratio | " + " | ".join(f"AUC {n}" for n in names) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(names)]
    ratio = shipped.seconds / rechub.seconds
    lines.append(f"| {rechub.name} (its best: the target) | {rechub.train_rows:,} x {rechub.epochs} | "
                 f"{rechub.seconds:.1f} | 1 | "
                 + " | ".join(f"{rechub.auc[n]:.4f}" for n in names) + " |")
    lines.append(f"| {shipped.name} | {shipped.train_rows:,} x {shipped.epochs} | {shipped.seconds:.1f} | "
                 f"{'1/' + format(1 / ratio, '.1f') if ratio < 1 else format(ratio, '.2f')} | "
                 + " | ".join(f"{shipped.auc[n]:.4f}" for n in names) + " |")
    return "\n".join(lines)


def rechub_inputs(transform, a):
    """The encoded arrays as torch-rechub's {feature name: column} dict and a (rows, tasks) label array."""
    x = {name: np.ascontiguousarray(a.cat[:, i]) for i, name in enumerate(transform.cat_inputs)}
    x |= {name: np.ascontiguousarray(a.num[:, j]) for j, name in enumerate(transform.num_inputs)}
    return x, np.asarray(a.labels, dtype=np.float32)


def run_rechub(cfg, transform, train, val, test) -> Outcome:
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    mc, tc = cfg.model, cfg.train
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    features = [SparseFeature(name, vocab_size=card, embed_dim=mc.embedding_dim)
                for name, card in zip(transform.cat_inputs, transform.cardinalities)]
    features += [DenseFeature(name) for name in transform.num_inputs]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (rechub_inputs(transform, a) for a in (train, val, test))
    train_dl, val_dl, _ = DataGenerator(x_train, y_train).generate_dataloader(
        x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, batch_size=tc.batch_size)
    task_types = ["classification"] * len(transform.tasks)
    model = MMOE(features, task_types, n_expert=mc.experts,
                 expert_params={"dims": list(mc.expert_hidden), "dropout": mc.dropout},
                 tower_params_list=[{"dims": list(mc.tower_hidden), "dropout": mc.dropout}] * len(task_types))
    with tempfile.TemporaryDirectory() as model_path:
        trainer = MTLTrainer(model, task_types, optimizer_params={"lr": tc.learning_rate, "weight_decay": tc.weight_decay},
                             n_epoch=tc.epochs, earlystop_patience=tc.patience, device="cpu", model_path=model_path)
        with OtherLoad() as other:
            started = time.perf_counter()
            log = trainer.fit(train_dl, val_dl)
            seconds = time.perf_counter() - started
    names = [t.name for t in transform.tasks]
    probs = _rechub_predict(trainer.model, x_test)
    auc = auc_per_task(y_test, np.asarray(test.mask), probs, names)
    return Outcome("torch-rechub MMOE", seconds, len(log), len(train), auc,
                   note="MTLTrainer.fit over DataGenerator's per-sample DataLoader", other_core_seconds=other.core_seconds)


@torch.no_grad()
def _rechub_predict(model, x: dict[str, np.ndarray], batch_size: int = 65536) -> np.ndarray:
    model.eval()
    n = len(next(iter(x.values())))
    outs = [model({k: torch.from_numpy(v[s : s + batch_size]) for k, v in x.items()}) for s in range(0, n, batch_size)]
    return torch.cat(outs).numpy()


# ---------------------------------------------------------------------------------------------
# profile: where one project training step spends its time


def profile_project(cfg, transform, train, val, steps: int) -> None:
    """torch.profiler over the project's own ``loop.train`` for ``steps`` batches (one epoch on
    that many training rows, then its validation pass), operators sorted by their own time."""
    from torch.profiler import ProfilerActivity, profile

    from mtl.models.layers import InputSpec
    from mtl.training import loop

    subset = train.take(np.arange(min(len(train), steps * cfg.train.batch_size)))
    spec = InputSpec.from_transform(transform)
    one_epoch = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    loop.train(subset.take(np.arange(min(len(subset), 5 * cfg.train.batch_size))), val, spec, transform.tasks,
               one_epoch)  # warm-up: thread pool, allocator, oneDNN kernels
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = loop.train(subset, val, spec, transform.tasks, one_epoch)
    print(f"\nprofile of loop.train: {len(subset):,} rows, 1 epoch: {result.samples_per_second:,.0f} samples/s "
          f"under the profiler")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


# ---------------------------------------------------------------------------------------------


def table(results: list[Outcome], oracle: dict[str, float] | None, names: list[str]) -> str:
    base = next((r for r in results if r.name.startswith("torch-rechub")), None)
    head = ["model", "epochs", "train s", "samples/s", "speedup", *(f"AUC {n}" for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in results:
        speed = f"{r.samples_per_second / base.samples_per_second:.2f}x" if base else "-"
        lines.append(f"| {r.name} | {r.epochs} | {r.seconds:.1f} | {r.samples_per_second:,.0f} | {speed} | "
                     + " | ".join(f"{r.auc[n]:.4f}" for n in names) + " |")
    if oracle:
        lines.append("| oracle (true probabilities) | | | | | " + " | ".join(f"{oracle[n]:.4f}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="synthetic log rows (before the split)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads, the same for both")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/mtl-bench-train"), help="cache of generated data")
    p.add_argument("--only", choices=["project", "rechub"], help="train one side only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a project setting (YAML value), e.g. --set model.norm=none; the reference "
                        "side gets the settings it can express (experts, layers, embedding, batch, lr)")
    p.add_argument("--sequences", action="store_true",
                   help="the project with and without user histories (no torch-rechub side)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="train.device for the project")
    p.add_argument("--no-time-to-quality", dest="time_to_quality", action="store_false",
                   help="skip the time-to-quality run (params.yaml's own settings until torch-rechub's AUC)")
    p.add_argument("--max-epochs", type=int, default=4, help="time-to-quality: most epochs tried")
    p.add_argument("--profile", action="store_true", help="also profile the project's training step")
    p.add_argument("--profile-steps", type=int, default=50, help="training batches profiled")
    args = p.parse_args()

    from mtl.data import features
    from mtl.data.features.shards import open_split

    torch.set_num_threads(args.threads)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    overrides["train.device"] = args.device
    if args.sequences:
        overrides["data.schema.sequence"] = {"hist_item_ids": "item_id", "hist_category_ids": "category_id"}
    cfg = bench_config(args.params, args.rows, args.epochs, args.threads, overrides)
    args.workdir.mkdir(parents=True, exist_ok=True)
    features_dir = prepare(cfg, args.workdir)
    transform = features.Transform.load(features_dir / "transform.json")
    # All three splits in memory before any clock starts, identical for both models.
    train, val, test = (open_split(features_dir / s).all() for s in ("train", "validation", "test"))
    names = [t.name for t in transform.tasks]
    print(f"{len(train):,} train / {len(val):,} validation / {len(test):,} test rows; "
          f"{len(transform.cat_inputs)} categorical + {len(transform.num_inputs)} numeric inputs; tasks {names}; "
          f"{args.epochs} epochs, batch {cfg.train.batch_size}, lr {cfg.train.learning_rate}, "
          f"{args.threads} threads, torch {torch.__version__}, {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""), flush=True)

    results = []
    if args.sequences:
        for histories in (False, True):
            results.append(run_project(cfg, transform, train, val, test, histories))
            print(f"{results[-1].name}: {results[-1].samples_per_second:,.0f} samples/s", flush=True)
    elif args.only in (None, "project"):
        results.append(run_project(cfg, transform, train, val, test))
        print(f"project: {results[-1].samples_per_second:,.0f} samples/s", flush=True)
    if args.only in (None, "rechub") and not args.sequences:
        from importlib.metadata import version

        results.append(run_rechub(cfg, transform, train, val, test))
        results[-1].name += f" {version('torch-rechub')}"
        print(f"torch-rechub: {results[-1].samples_per_second:,.0f} samples/s", flush=True)
    rechub = next((r for r in results if r.name.startswith("torch-rechub")), None)
    shipped = None
    if args.time_to_quality and rechub is not None:
        shipped_cfg = bench_config(args.params, args.rows, args.epochs, args.threads, {"train.device": args.device},
                                   hyper={})
        shipped = run_time_to_quality(shipped_cfg, transform, train, val, test, rechub.auc, args.max_epochs)
    print()
    print(table(results, oracle_auc(features_dir, cfg, test, names), names))
    if shipped is not None:
        print("\ntime to torch-rechub's quality:\n")
        print(time_to_quality_table(shipped, rechub, names))
        results.append(shipped)
    for r in results:
        print(f"  {r.name}: {r.note}")
        if r.other_core_seconds is not None:
            print(f"    other processes used {r.other_core_seconds:.1f} CPU-seconds while it trained "
                  f"({r.other_core_seconds / r.seconds:.2f} of {os.cpu_count()} cores): "
                  + ("numbers disturbed, rerun on a quiet machine" if r.other_core_seconds / r.seconds > 0.1 else "quiet"))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if args.profile:
        profile_project(cfg, transform, train, val, args.profile_steps)


if __name__ == "__main__":
    main()
