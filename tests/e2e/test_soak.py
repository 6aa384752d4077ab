"""A year in production, on small data: 52 weekly retrainings (some promoted, most rejected, one
bad batch quarantined, one rollback), 365 daily scorings, and `mtl gc` every week under the
retention policy. Disk must stay bounded and every kept version whole.

Each week runs the pipeline's own stage functions in-process (as `dvc repro` would run them, minus
a process per stage), records the data outputs in DVC (`dvc commit` of generate and preprocess
through DVC's API: the cache entries and the dvc.lock hashes the model version's lineage tags
name), and promotes through the registry. Time is simulated: day d of the year is `start + d days`, the date the policy ages
score files and quarantined batches by, and which names each day's score file. Ages of MLflow
runs are real (minutes), so the soak's policy keeps candidates by count (candidate_days: 0).

`make soak` runs this file alone and prints the figures the README reports.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from mtl import registry_cli, stagelist, tracking
from mtl.config import load_config
from mtl.maintenance import dvc_store
from mtl.maintenance.gc import gc
from mtl.maintenance.plan import folder_bytes, human
from mtl.maintenance.policy import DAY, LINEAGE_LAYERS
from mtl.paths import Paths
from mtl.promotion import registry
from mtl.serving.batch import score
from mtl.stages.common import ValidationFailed
from tests.conftest import SMALL_OVERRIDES, copy_project, set_params

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("soak")]

NAME = "mtl-ecommerce"
WEEKS = 52
SMALL = SMALL_OVERRIDES | {"data.synthetic.rows": 3_000, "data.synthetic.users": 300, "data.synthetic.items": 200,
                           "train.epochs": 1, "evaluation.baselines": [], "evaluation.bootstrap": 0,
                           "validation.min_rows": 100, "validation.drift.min_rows": 100,
                           "gate.require_improvement": False, "gate.slices": {}}
POLICY = {"retention.versions": 3, "retention.champions": 3, "retention.candidate_days": 0,
          "retention.quarantine_days": 30, "retention.score_days": 90, "retention.expired_versions": "keep"}
PROMOTE_EVERY = 6  # weeks; the other weeks' candidates meet a floor they cannot reach
BAD_WEEK, ROLLBACK_WEEK = 20, 33
STORES = (".dvc/cache", "mlartifacts", "mlflow.db", "data")
# The stages whose outputs DVC records each week: the raw data and the features with the fitted
# transform, what a version's lineage names. (Committing every stage re-parses dvc.yaml and
# dvc.lock once per stage, a minute a week; the model itself is in MLflow.)
DATA_STAGES = ("generate", "preprocess")


def footprint(root: Path) -> int:
    """Bytes of everything the pipeline writes: DVC cache, MLflow store and artifacts, data/ (the
    workspace's outputs, quarantine, score files)."""
    return sum(folder_bytes(root / s) for s in STORES)


def _week(root: Path, week: int) -> str:
    """One retraining: new data (a batch of a different size from the same process), the stages
    through gate, the data outputs recorded in DVC, then promote. Returns the decision."""
    from dvc.repo import Repo

    bad = week == BAD_WEEK  # another latent world: drift stops it at validation
    floor = 0.01 if week % PROMOTE_EVERY == 0 else 0.99  # AUC on a tiny test split: any model clears 0.01
    set_params(root, {"data.synthetic.rows": 3_000 + week, "data.synthetic.seed": 7 if bad else 42,
                      "train.seed": week, "gate.tasks": {"click": {"floor": floor, "max_regression": 1.0}}})
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    stages = stagelist.functions()
    try:
        for name in [n for n in stages if n != "promote"]:
            stages[name](cfg, paths)
    except ValidationFailed:
        return "quarantined"
    with contextlib.chdir(root):  # DVC resolves a stage's paths from the working directory
        repo = Repo(str(root))
        for name in DATA_STAGES:
            repo.commit(name, force=True)
    return "promoted" if stages["promote"](cfg, paths).promote else "rejected"


def _score_day(root: Path, day: str, rows: Path) -> None:
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    score(cfg, paths, rows, root / "data" / "07_scores" / f"{day}.parquet")


def _lineage_bytes(root: Path, versions, classes) -> int:
    """Bytes of the data kept for old champions only (their raw data and features)."""
    from dvc.repo import Repo

    odb = Repo(str(root)).cache.local
    kept = {h for v in versions if classes[v.version] == "lineage" for layer, h in v.data.items()
            if layer in LINEAGE_LAYERS}
    files = dvc_store._expand(odb, kept)
    return sum(Path(odb.oid_to_path(h)).stat().st_size for h in files if odb.exists(h))


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    for var in ("MLFLOW_TRACKING_URI", "AIRFLOW_HOME"):
        mp.delenv(var, raising=False)
    root = copy_project(tmp_path_factory.mktemp("soak") / "project")
    mp.setenv("MTL_PROJECT_DIR", str(root))
    set_params(root, SMALL | POLICY)
    start = time.time()
    log, figures = io.StringIO(), {"weeks": [], "removed": 0, "started": time.perf_counter()}
    rows = None
    for week in range(WEEKS):
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            decision = _week(root, week)
            if week == 0:
                figures["one_run"] = footprint(root)
                rows = root.parent / "day.parquet"
                pd.read_parquet(Paths.at(root).test_raw_file).head(200).to_parquet(rows)
            if week == ROLLBACK_WEEK:
                registry_cli.rollback(load_config(root / "params.yaml"), Paths.at(root))
            for d in range(7 * week, 7 * week + (8 if week == WEEKS - 1 else 7)):  # 365 days in all
                _score_day(root, (datetime.fromtimestamp(start, timezone.utc) + timedelta(days=d)).strftime("%Y-%m-%d"), rows)
            done = gc(load_config(root / "params.yaml"), Paths.at(root), now=start + (7 * week + 7) * DAY)
        figures["removed"] += sum(i.bytes or 0 for i in done.items)
        figures["weeks"].append({"week": week, "decision": decision, "footprint": footprint(root),
                                 "lineage": _lineage_bytes(root, done.versions, done.classes),
                                 "classes": dict(done.classes)})
    figures["seconds"] = time.perf_counter() - figures["started"]
    (root.parent / "soak.log").write_text(log.getvalue())  # the stages' own output, to debug a failure
    yield root, figures
    mp.undo()


def test_a_year_keeps_disk_bounded(year):
    root, fig = year
    weeks = fig["weeks"]
    decisions = [w["decision"] for w in weeks]
    promotions = decisions.count("promoted")
    one, final = fig["one_run"], weeks[-1]["footprint"]
    without = final + fig["removed"]  # what the year would have left without gc
    # The policy's bound: the versions kept whole (the newest `versions`, the newest `champions`
    # that were champion, the one a rollback restored) at one run's footprint each, the score
    # files of the last score_days, plus the data every older champion keeps for lineage.
    kept_whole = POLICY["retention.versions"] + POLICY["retention.champions"] + 1
    bound = kept_whole * one + folder_bytes(root / "data" / "07_scores") + weeks[-1]["lineage"]
    print(f"\nsoak: {WEEKS} weeks ({promotions} promoted, {decisions.count('rejected')} rejected, "
          f"{decisions.count('quarantined')} quarantined, "
          f"1 rollback), {7 * WEEKS + 1} scorings, {fig['seconds']:.0f} s\n  one run's footprint {human(one)}; after a "
          f"year with the policy {human(final)} ({final / one:.1f} runs; of it {human(weeks[-1]['lineage'])} old "
          f"champions' lineage data, {human(folder_bytes(root / 'data' / '07_scores'))} score files); without it "
          f"{human(without)} ({without / one:.1f} runs); the policy's bound {human(bound)}\n  footprint by week: "
          + " ".join(f"{w['week']}:{w['footprint'] / one:.1f}" for w in weeks[::4]))
    assert decisions[BAD_WEEK] == "quarantined"
    assert promotions == sum(1 for w in range(WEEKS) if w % PROMOTE_EVERY == 0 and w != BAD_WEEK)
    assert final <= bound
    # Not growing with the runs: over the second half (26 more runs), what grows beyond old
    # champions' lineage data is less than half of one run's footprint (registry rows, mostly).
    mid = weeks[WEEKS // 2]
    assert (final - weeks[-1]["lineage"]) - (mid["footprint"] - mid["lineage"]) < 0.5 * one
    assert without > 3 * final  # the policy is what keeps it there


def test_every_kept_version_is_whole_and_rollback_still_scores(year):
    root, fig = year
    cfg, paths = load_config(root / "params.yaml"), Paths.at(root)
    tracking.configure(paths)
    classes = fig["weeks"][-1]["classes"]
    assert sum(1 for c in classes.values() if c == "full") <= POLICY["retention.versions"] + POLICY["retention.champions"] + 1
    for version, kind in classes.items():
        out = registry_cli.lineage(cfg, paths, str(version), rehash=True)
        if kind == "expired":
            assert "removed by `mtl gc`" in out, out
        else:  # full, or an old champion's lineage: its data and transform hash as recorded
            assert "each hashing as recorded" in out and "transform in the cache matches" in out, out
    # every version kept in full still loads and scores
    rows = root.parent / "day.parquet"
    for version in (v for v, c in classes.items() if c == "full"):
        result = score(cfg, paths, rows, root.parent / f"v{version}.parquet", model=f"models:/{NAME}/{version}")
        assert result.rows == 200
    # and a rollback now restores a champion that scores
    champion = registry.get_champion(NAME).version
    registry_cli.rollback(cfg, paths)
    assert registry.get_champion(NAME).version != champion
    assert score(cfg, paths, rows, root.parent / "after_rollback.parquet").rows == 200
    # the quarantined batch and the score files past score_days are gone, the recent ones kept
    # (the days less than score_days behind the last gc: 91 or 92, by the hour the year started at)
    assert not any((root / "data" / "quarantine").glob("2*"))
    assert 91 <= len(list((root / "data" / "07_scores").glob("*.parquet"))) <= 92
