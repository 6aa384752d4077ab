"""`mtl gc`: apply the retention policy (params.yaml ``retention``) to every store the project
writes: MLflow (runs, logged models, registry versions), the DVC cache, quarantined batches,
daily score files, and Airflow's history of the project's DAGs.

It works under the locks runs take: the project's store lock, exclusive here and shared by every
DVC command a run issues (so no stage is writing cache entries its dvc.lock does not list yet),
and the model's promotion lock (so the champion cannot move while versions are classed). It
plans first, from what the stores hold, then removes item by item in the plan's order; the
printed report is that plan. Every item is something no kept version needs, so a gc killed
midway leaves only more of the same for the next one.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

from mtl.config import Config
from mtl.locks import project_stores
from mtl.maintenance import dvc_store, files, mlflow_store
from mtl.maintenance.plan import Item, remove_path, report
from mtl.maintenance.policy import Version, kept_data
from mtl.paths import Paths


def _client_call(name: str):
    return lambda ctx, *args: getattr(mlflow_store, name)(ctx.client, *args)


# Each plan item's action: how it is carried out. ``ctx`` is the running gc.
ACTIONS = {
    "remove_path": lambda ctx, path: remove_path(path),
    "expire_version": _client_call("expire_version"),
    "delete_version": _client_call("delete_version"),
    "purge_run": _client_call("purge_run"),
    "purge_model": _client_call("purge_model"),
    "airflow_db_clean": lambda ctx, home, before: files.airflow_db_clean(home, before),
}


@dataclass
class Collected:
    """The plan and what it was made from."""

    items: list[Item]
    versions: list[Version]
    classes: dict[int, str]  # version -> full | lineage | expired
    client: object = None


def collect(cfg: Config, paths: Paths, now: float) -> Collected:
    client = mlflow_store.client_for(paths)
    ml_items, versions, classes = mlflow_store.plan(client, cfg.gate.model_name, cfg.retention, now)
    items = ml_items + dvc_store.plan(paths.home, kept_data(versions, classes))
    for store in (files.quarantine, files.scores, files.workspaces, files.airflow):
        items += store(cfg, paths, now)
    return Collected(items, versions, classes, client)


def gc(cfg: Config, paths: Paths, dry_run: bool = False, now: float | None = None, verbose: bool = False,
       echo=print) -> Collected:
    """Plan and (unless ``dry_run``) carry out the policy; ``now`` (seconds since the epoch)
    dates the ages, default the clock. Returns the plan."""
    from mtl import tracking
    from mtl.promotion import registry

    now = time.time() if now is None else now
    tracking.configure(paths)
    with ExitStack() as held:
        held.enter_context(project_stores(paths.home, shared=False))
        held.enter_context(registry.lock_for(paths, cfg.gate.model_name)())
        done = collect(cfg, paths, now)
        counts = {c: sum(1 for v in done.classes.values() if v == c) for c in ("full", "lineage", "expired")}
        echo(f"gc: {cfg.gate.model_name}: {len(done.versions)} versions: {counts['full']} kept in full, "
             f"{counts['lineage']} old champions kept for lineage, {counts['expired']} expired")
        if dry_run:
            for item in done.items:
                if item.action == "airflow_db_clean":
                    echo(files.airflow_db_clean(*item.args, dry_run=True).strip()[-2000:])
        else:
            for item in done.items:
                ACTIONS[item.action](done, *item.args)
        echo(report(done.items, dry_run, verbose))
        server = [i for i in done.items if i.action in ("purge_run", "purge_model")]
        if server and not mlflow_store.can_purge(done.client):
            echo(_server_note(len(server), tracking.tracking_uri(paths), dry_run))
    return done


def _server_note(n: int, uri: str, dry_run: bool) -> str:
    # The REST store has no hard delete: purging is the server side's `mlflow gc`.
    return (f"gc: {uri} is a tracking server, which only deletes: the {n} MLflow runs and models above "
            f"{'would be' if dry_run else 'are'} deleted (gone from its UI and searches). To free their "
            "artifacts, run `mlflow gc --backend-store-uri <the server's store>` beside the server, with "
            "MLFLOW_TRACKING_URI set to it (README: Retention).")
