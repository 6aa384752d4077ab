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


def lineage(cfg: Config, paths: Paths, version: str, rehash: bool = False) -> str:
    tracking.configure(paths)
    name = cfg.gate.model_name
    record = registry.version_record(name, version)
    lines = _describe(record)
    params = record.get("params", {})
    if params:
        keys = sorted(k for k in params if k.split(".")[0] in ("model", "train", "tasks"))
        lines.append("  params (model, train, tasks; data and features are pinned by the hashes above)")
        lines += [f"    {k} = {params[k]}" for k in keys]
    lines += _data_check(paths, record["tags"], rehash)
    chain = registry.champion_chain(name, version)
    if len(chain) > 1:
        lines.append("  replaced              " + " <- ".join(f"v{v}" for v in chain))
    return "\n".join(lines)


def _data_check(paths: Paths, tags: dict, rehash: bool) -> list[str]:
    """Whether the data the version records is still in the DVC cache (what `mtl gc` keeps), and
    with ``rehash`` whether it and the fitted transform hash as recorded."""
    from mtl.maintenance import dvc_store
    from mtl.maintenance.policy import EXPIRED_TAG

    hashes = [v for k, v in sorted(tags.items()) if k.startswith("mtl.dvc.")]
    if tags.get(EXPIRED_TAG) == "expired":
        return ["  data in the DVC cache  removed by `mtl gc`: the version expired under the retention policy "
                "(its decision, reason and test metrics are kept)"]
    if not hashes:
        return ["  data in the DVC cache  not recorded (the run was not made by `dvc repro`)"]
    checked, problems = dvc_store.verify(paths.home, hashes, rehash)
    if problems:
        return [f"  data in the DVC cache  MISSING: {len(problems)} of {checked} entries"] + \
            [f"    {p}" for p in problems[:10]]
    lines = [f"  data in the DVC cache  {checked} entries present" + (", each hashing as recorded" if rehash else "")]
    features, expected = tags.get("mtl.dvc.03_features"), tags.get("mtl.transform_sha256")
    if rehash and features and expected:
        from mtl.data.features import Transform

        found = dvc_store.file_in(paths.home, features, "transform.json")
        ok = found is not None and Transform.load(found).fingerprint() == expected
        lines.append(f"  transform in the cache {'matches' if ok else 'DOES NOT MATCH'} the recorded fingerprint")
    return lines
