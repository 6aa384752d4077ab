"""Stage ``preprocess``: split, fit the feature transform on the training split, write shards."""

from __future__ import annotations

from mtl.config import Config
from mtl.paths import Paths
from mtl.stages.common import ValidationFailed


def run(cfg: Config, paths: Paths) -> dict:
    from mtl.data.features.preprocess import build

    if not paths.validation_passed.is_file():
        if not paths.validation_result.is_file():
            raise FileNotFoundError(f"{paths.validation_result} is missing: run `mtl validate` (or `dvc repro`) first")
        raise ValidationFailed(f"{paths.raw_file} has not passed validation ({paths.validation_passed} is missing): "
                               f"run `mtl validate` (or `dvc repro`) and fix what it reports first")
    if not paths.raw_file.is_file():
        raise FileNotFoundError(f"{paths.raw_file} is missing: run `mtl generate` first")
    summary = build(paths.raw_file, cfg, paths.features_dir)
    rows = summary["rows"]
    print(
        f"split ({summary['split']['method']}): " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"; transform {summary['transform_sha256'][:12]} -> {paths.transform_file} "
        f"({sum(rows.values()) / summary['seconds']['total']:,.0f} rows/s)"
    )
    return summary
