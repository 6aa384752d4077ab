"""`mtl champion`, `mtl rollback` and `mtl lineage VERSION`: the registry as text for people."""

from __future__ import annotations

from mtl import tracking
from mtl.config import Config
from mtl.paths import Paths
from mtl.promotion import registry

# Lineage keys, in the order they are printed, with the label they are printed under.
LINEAGE = [
    ("mtl.dvc.01_raw", "raw data (DVC hash)"),
    ("mtl.dvc.03_features", "features (DVC hash)"),
    ("mtl.transform_sha256", "feature transform"),
    ("mtl.validation", "validation"),
    ("mtl.git_commit", "git commit"),
    ("mtl.pipeline_run_id", "pipeline run"),
    ("mtl.airflow_run_id", "Airflow dag run"),
    ("mtl.run_id", "MLflow run"),
    (registry.DECISION, "decision"),
    (registry.SUMMARY, "reason"),
]


def _describe(record: dict) -> list[str]:
    tags = record["tags"]
    lines = [f"{record['name']} version {record['version']}"
             + (f" (@{', @'.join(record['aliases'])})" if record["aliases"] else "")]
    lines += [f"  {label:<22}{tags[key]}" for key, label in LINEAGE if tags.get(key)]
    metrics = {k: v for k, v in tags.items() if k.startswith("test_")}
    if metrics:
        lines.append("  test metrics          " + ", ".join(f"{k[5:]} {v}" for k, v in sorted(metrics.items())))
    return lines


def champion(cfg: Config, paths: Paths) -> str:
    tracking.configure(paths)
    name = cfg.gate.model_name
    current = registry.get_champion(name)
    if current is None:
        return f"{name} has no champion yet (run the pipeline: `make run`)"
    lines = _describe(registry.version_record(name, current.version))
    previous = registry.get_alias(name, registry.PREVIOUS)
    lines.append(f"  previous champion     {previous.version if previous else 'none'}"
                 + (" (restored by `mtl rollback`)" if previous else ""))
    return "\n".join(lines)


def rollback(cfg: Config, paths: Paths) -> str:
    tracking.configure(paths)
    name = cfg.gate.model_name
    restored, demoted = registry.rollback(name, registry.lock_for(paths, name))
    return f"{name}: version {restored} is @champion again; version {demoted} was rolled back"


def lineage(cfg: Config, paths: Paths, version: str) -> str:
    tracking.configure(paths)
    name = cfg.gate.model_name
    record = registry.version_record(name, version)
    lines = _describe(record)
    params = record.get("params", {})
    if params:
        keys = sorted(k for k in params if k.split(".")[0] in ("model", "train", "tasks"))
        lines.append("  params (model, train, tasks; data and features are pinned by the hashes above)")
        lines += [f"    {k} = {params[k]}" for k in keys]
    chain = registry.champion_chain(name, version)
    if len(chain) > 1:
        lines.append("  replaced              " + " <- ".join(f"v{v}" for v in chain))
    return "\n".join(lines)
