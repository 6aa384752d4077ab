"""Stage ``validate``: the raw batch against the data contract (the GX suite, the leakage guard,
drift against the champion); a failing batch is quarantined and stops the chain."""

from __future__ import annotations

import shutil
from pathlib import Path

from mtl.config import Config, ValidationConfig
from mtl.paths import Paths
from mtl.stages.common import ValidationFailed, write_json


def drift_reference(cfg: Config, paths: Paths) -> dict:
    """The current champion's training statistics (saved in its packaged transform), or why the
    drift checks are skipped."""
    import tempfile

    from mtl import tracking
    from mtl.data.features import Transform
    from mtl.promotion import registry

    if not cfg.validation.drift.enabled:
        return {"skipped": "validation.drift.enabled is false"}
    name = cfg.gate.model_name
    if tracking.tracking_uri(paths) == f"sqlite:///{paths.mlflow_db}" and not paths.mlflow_db.is_file():
        # The project's own store does not exist yet, so neither does a champion: no need to pay
        # for importing MLflow (seconds) to learn that.
        return {"skipped": f"no champion of model '{name}' yet (the first run)"}
    tracking.configure(paths)
    with tempfile.TemporaryDirectory() as tmp:
        found = registry.champion_artifact(name, "transform.json", Path(tmp))
        if found is None:
            return {"skipped": f"no champion of model '{name}' yet (the first run)"}
        version, path = found
        transform = Transform.load(path)
    if not transform.stats.get("numeric") and not transform.stats.get("categorical"):
        return {"skipped": f"the transform of {name} version {version} predates drift statistics"}
    return {"name": f"{name} version {version}", "model": name, "version": version,
            "stats": transform.stats, "categorical": transform.categorical}


def quarantine(validation: ValidationConfig, paths: Paths, summary: str) -> Path:
    """Move the failed batch (the ingested copy in data/01_raw; the user's own files are never
    touched) and a copy of its report to a new folder under validation.quarantine."""
    import datetime as dt

    base = paths.resolve(validation.quarantine)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest, n = base / stamp, 1
    while dest.exists():
        n += 1
        dest = base / f"{stamp}-{n}"
    (dest / "batch").mkdir(parents=True)
    for f in (paths.raw_file, paths.raw_manifest):
        if f.is_file():
            shutil.move(str(f), dest / "batch" / f.name)
    shutil.copy2(paths.validation_result, dest / "result.json")
    if paths.data_docs_dir.is_dir():
        shutil.copytree(paths.data_docs_dir, dest / "data_docs")
    (dest / "summary.txt").write_text(summary + "\n")
    return dest


def run(cfg: Config, paths: Paths) -> dict:
    from mtl.data.ingest.sources import check_source_unchanged
    from mtl.data.contracts.validation import validate_file

    check_source_unchanged(cfg.data, paths)
    if not paths.raw_file.is_file():
        raise FileNotFoundError(f"{paths.raw_file} is missing: run `mtl generate` first")
    paths.validation_passed.unlink(missing_ok=True)
    reference = drift_reference(cfg, paths)
    if paths.data_docs_dir.exists():
        shutil.rmtree(paths.data_docs_dir)
    expectations = paths.root / cfg.validation.expectations if cfg.validation.expectations else None
    report = validate_file(paths.raw_file, cfg, docs_dir=paths.data_docs_dir, reference=reference,
                           expectations=expectations)
    result = report.to_dict()
    write_json(paths.validation_result, result)
    print(report.summary())
    print(f"data docs: {paths.data_docs_dir / 'index.html'}")
    if not report.success:
        where = quarantine(cfg.validation, paths, report.summary())
        raise ValidationFailed(
            f"validation of {paths.raw_file} failed; nothing downstream ran and no model was registered.\n"
            + report.summary()
            + f"\nThe batch and its report were moved to {where} (the source files are untouched). "
            f"Fix the data, then run the pipeline again."
        )
    write_json(paths.validation_passed, {"success": True})
    return result
