"""The retention policy as pure functions: which registry versions keep what, and which dated
files have expired. No store is read here; mtl/maintenance/stores.py gathers the facts and
removes what the plan names.

A registry version is one of:

- ``full``: kept whole (its model, its MLflow run, every DVC output its run recorded). The
  champion, the previous champion, the newest ``retention.champions`` versions that were ever
  champion, the newest ``retention.versions`` versions, and any version younger than
  ``retention.candidate_days``.
- ``lineage``: was champion once, and is older than all of that. Its model goes; its registry
  version, its run (params, metrics, tags) and the data behind it stay, so `mtl lineage N`
  still resolves: the raw data and the features with the fitted transform (LINEAGE_LAYERS).
- ``expired``: never champion and outside the rest. Its model, run and artifacts go, and the
  DVC data that only it used; its registry version stays with its tags or is deleted
  (``retention.expired_versions``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from mtl.config import RetentionConfig
from mtl.promotion.registry import CHAMPION, PREVIOUS

DAY = 86400.0
EVER_CHAMPION = ("promoted", "rolled_back")  # decision tags of versions that held @champion
# The DVC outputs lineage needs of an old champion: the data and the fitted transform.
LINEAGE_LAYERS = ("01_raw", "03_features")
EXPIRED_TAG = "mtl.artifacts"  # a version tag, "expired" once gc removed its model, run and data


@dataclass(frozen=True)
class Version:
    """What the policy needs to know of one registry version."""

    version: int
    created: float  # seconds since the epoch
    decision: str | None = None  # the mtl.decision tag: promoted | rejected | rolled_back
    aliases: frozenset[str] = frozenset()
    run_id: str | None = None
    model_id: str | None = None  # the MLflow 3 logged model it was registered from
    data: dict[str, str] = field(default_factory=dict)  # DVC layer (01_raw, ...) -> hash, from mtl.dvc.* tags
    expired: bool = False  # an earlier gc removed its model and run (tagged mtl.artifacts=expired)

    @property
    def ever_champion(self) -> bool:
        return self.decision in EVER_CHAMPION or bool(self.aliases & {CHAMPION, PREVIOUS})


def classify(versions: list[Version], policy: RetentionConfig, now: float) -> dict[int, str]:
    """Each version's class: full, lineage or expired (see the module docstring)."""
    newest = sorted(versions, key=lambda v: v.version, reverse=True)
    full = {v.version for v in newest[:policy.versions]}
    full |= {v.version for v in [v for v in newest if v.ever_champion][:policy.champions]}
    full |= {v.version for v in versions if v.aliases & {CHAMPION, PREVIOUS}}
    full |= {v.version for v in versions if now - v.created < policy.candidate_days * DAY}
    return {v.version: "full" if v.version in full else "lineage" if v.ever_champion else "expired"
            for v in versions}


def kept_data(versions: list[Version], classes: dict[int, str]) -> set[str]:
    """The DVC hashes the kept versions need: every output of a full version, the lineage
    layers of the rest that were champion."""
    hashes: set[str] = set()
    for v in versions:
        if classes[v.version] == "full":
            hashes |= set(v.data.values())
        elif classes[v.version] == "lineage":
            hashes |= {h for layer, h in v.data.items() if layer in LINEAGE_LAYERS}
    return hashes


def stale(created: float, days: float, now: float) -> bool:
    return now - created >= days * DAY


# --- dated files ---------------------------------------------------------------------------------

# validation.quarantine/<UTC stamp>[-n]/ (mtl/stages/validate.py: quarantine)
_QUARANTINE = re.compile(r"^(\d{8}T\d{6}Z)(-\d+)?$")


def quarantined_at(name: str) -> float | None:
    """When a quarantine folder was made, from its name; None for a folder the validate stage did not make."""
    m = _QUARANTINE.match(name)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


DAY_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"


def day_of(pattern: str, path: str) -> str | None:
    """The YYYY-MM-DD that ``path`` (a file the pattern of airflow.scoring.output wrote, or its
    .json manifest) holds the scores of; None when the path is not one of them."""
    parts = [re.escape(p) for p in pattern.split("{day}")]
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})".join(parts) + r"(?:\.json)?", path)
    return m.group(1) if m else None


def day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
