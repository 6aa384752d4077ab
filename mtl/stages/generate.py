"""Stage ``generate``: the raw log in data/01_raw, synthetic or ingested from the user's files."""

from __future__ import annotations

from mtl.config import Config
from mtl.paths import Paths


def run(cfg: Config, paths: Paths) -> dict:
    from mtl.data.ingest.sources import materialise_raw

    manifest = materialise_raw(cfg, paths)
    print(f"raw data: {manifest['rows']:,} rows from {manifest['source']} -> {paths.raw_file}")
    return manifest
