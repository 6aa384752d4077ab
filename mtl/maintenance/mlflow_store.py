"""The MLflow side of `mtl gc`: the registry's versions, the project's runs and logged models,
what the policy removes of them, and the removal.

Removal is MLflow's own: a run or logged model is deleted (its lifecycle stage becomes
``deleted``) and then purged with its artifacts by the code behind `mlflow gc`. Each step can be
interrupted: an interrupted purge leaves a deleted run or model, which the next `mtl gc` finds
(it lists deleted ones too) and purges. A tracking server's store can only delete: purging is
`mlflow gc` run where the server's backend store is, so there deleted ones are left to it. A
version that expires is tagged first, so the registry never shows a version whose model is gone
without saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mtl import tracking
from mtl.maintenance.plan import Item, describe_age, folder_bytes
from mtl.maintenance.policy import EXPIRED_TAG, Version, classify, stale
from mtl.promotion.registry import CHAMPION, DECISION, PREVIOUS
from mtl.paths import Paths

EXPERIMENTS = (tracking.EXPERIMENT, tracking.TUNE_EXPERIMENT)  # the project's own; no other is read


@dataclass(frozen=True)
class Entity:
    """A run or a logged model: what gc needs to decide on it and to report its size."""

    kind: str  # run | model
    id: str
    created: float
    artifacts: str | None
    deleted: bool = False
    running: bool = False
    run_id: str | None = None  # a logged model's source run


def local_path(uri: str | None) -> Path | None:
    """The folder an artifact URI names on this machine, None for a remote store."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri) if parsed.scheme == "" else None


def versions(client, name: str) -> list[Version]:
    from mlflow.exceptions import MlflowException

    try:
        found = list(_pages(lambda token: client.search_model_versions(f"name='{name}'", page_token=token)))
    except MlflowException:
        return []
    aliases: dict[str, set[str]] = {}
    for alias in (CHAMPION, PREVIOUS):
        try:
            aliases.setdefault(str(client.get_model_version_by_alias(name, alias).version), set()).add(alias)
        except MlflowException:
            pass
    out = []
    for mv in found:
        tags = dict(mv.tags or {})
        model_id = mv.source.split("/", 1)[1] if (mv.source or "").startswith("models:/") else None
        out.append(Version(int(mv.version), mv.creation_timestamp / 1000.0, tags.get(DECISION),
                           frozenset(aliases.get(str(mv.version), ())), mv.run_id, getattr(mv, "model_id", None) or model_id,
                           {k[len("mtl.dvc."):]: v for k, v in tags.items() if k.startswith("mtl.dvc.")},
                           tags.get(EXPIRED_TAG) == "expired"))
    return out


def _pages(fetch):
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


def entities(client) -> list[Entity]:
    """Every run and logged model of the project's experiments, deleted ones included."""
    from mlflow.entities import ViewType

    ids = [e.experiment_id for e in (client.get_experiment_by_name(n) for n in EXPERIMENTS) if e is not None]
    if not ids:
        return []
    out = [Entity("run", r.info.run_id, r.info.start_time / 1000.0, r.info.artifact_uri,
                  r.info.lifecycle_stage == "deleted", r.info.status == "RUNNING")
           for r in _pages(lambda t: client.search_runs(ids, run_view_type=ViewType.ALL, page_token=t))]
    out += [Entity("model", m.model_id, m.creation_timestamp / 1000.0, m.artifact_location, run_id=m.source_run_id)
            for m in _pages(lambda t: client.search_logged_models(ids, page_token=t))]
    out += [_deleted_model(client, i) for i in _deleted_model_ids(client, set(ids))]
    return out


def plan(client, name: str, policy, now: float) -> tuple[list[Item], list[Version], dict[int, str]]:
    """What the policy removes from MLflow, and every version with its class."""
    found = versions(client, name)
    classes = classify(found, policy, now)
    kept_runs = {v.run_id for v in found if classes[v.version] != "expired"}
    kept_models = {v.model_id for v in found if classes[v.version] == "full"}
    doomed_runs = {v.run_id for v in found if classes[v.version] == "expired"}
    label = {v.run_id: f"version {v.version}, {v.decision or 'undecided'}" for v in found}
    expired = [v for v in sorted(found, key=lambda v: v.version) if classes[v.version] == "expired"]
    if policy.expired_versions == "delete":
        items = [Item("mlflow", "delete_version", (name, str(v.version)), None,
                      f"{name} version {v.version} ({v.decision or 'undecided'}, {describe_age(v.created, now)})")
                 for v in expired]
    else:  # tagged before anything of it goes: the registry never shows a version whose model is gone unsaid
        items = [Item("mlflow", "expire_version", (name, str(v.version)), 0,
                      f"{name} version {v.version}: tagged {EXPIRED_TAG}=expired, its tags kept")
                 for v in expired if not v.expired]
    purgeable = can_purge(client)
    for e in entities(client):
        if e.deleted and not purgeable:  # waits for the server's own `mlflow gc`; nothing left to do here
            continue
        if e.kind == "run" and (e.id in kept_runs or (e.running and not e.deleted)):
            continue
        if e.kind == "model" and e.id in kept_models:
            continue
        if e.deleted or e.id in doomed_runs or e.run_id in doomed_runs or stale(e.created, policy.candidate_days, now):
            where = local_path(e.artifacts)
            items.append(Item("mlflow", f"purge_{e.kind}", (e.id,), folder_bytes(where) if where else None,
                              f"{'run' if e.kind == 'run' else 'logged model'} {e.id} ("
                              + (f"{label[e.run_id or e.id]}, " if (e.run_id or e.id) in label else "")
                              + ("deleted, not yet purged)" if e.deleted else f"{describe_age(e.created, now)})")))
    return items, found, classes


def _deleted_model_ids(client, experiment_ids: set[str]) -> list[str]:
    """Logged models deleted but not purged (an interrupted gc) in the project's experiments: the
    public search leaves deleted models out, so this asks the store directly."""
    store = _store(client)
    if not hasattr(store, "_get_deleted_logged_models"):
        return []
    out = []
    for model_id in store._get_deleted_logged_models():
        model = store.get_logged_model(model_id, allow_deleted=True)
        if str(model.experiment_id) in experiment_ids:
            out.append(model_id)
    return out


def _deleted_model(client, model_id: str) -> Entity:
    m = _store(client).get_logged_model(model_id, allow_deleted=True)
    return Entity("model", m.model_id, m.creation_timestamp / 1000.0, m.artifact_location, True, run_id=m.source_run_id)


def _store(client):
    return client._tracking_client.store


def can_purge(client) -> bool:
    """Whether this store can purge (a database or file store here), not only delete (a server)."""
    return hasattr(_store(client), "_hard_delete_run")


def expire_version(client, name: str, version: str) -> None:
    client.set_model_version_tag(name, version, EXPIRED_TAG, "expired")


def delete_version(client, name: str, version: str) -> None:
    client.delete_model_version(name, version)


def purge_run(client, run_id: str) -> None:
    if client.get_run(run_id).info.lifecycle_stage != "deleted":
        client.delete_run(run_id)
    _purge(client, run_ids=[run_id])


def purge_model(client, model_id: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_logged_model(model_id)
    except MlflowException:  # deleted already (an interrupted gc): only the purge is left
        pass
    _purge(client, model_ids=[model_id])


def _purge(client, run_ids: list[str] | None = None, model_ids: list[str] | None = None) -> None:
    """Permanently delete deleted runs and models with their artifacts: the code of `mlflow gc`,
    called with explicit id lists. (The command treats an empty list as "every deleted run in the
    store", which in a store shared with other teams is not this project's to purge.)"""
    import contextlib
    import io

    from mlflow.cli import _gc_tracking_resources

    store = _store(client)
    if not can_purge(client):  # a tracking server: deleted, to be purged there (see gc's report)
        return
    with contextlib.redirect_stdout(io.StringIO()):  # its line per id; gc's own report says what went
        _gc_tracking_resources(store, run_ids=run_ids or [], experiment_ids=None, logged_model_ids=model_ids or [],
                               older_than=None, time_delta=0, skip_experiments=True,
                               skip_logged_models=not model_ids, ignore_not_found=True)


def client_for(paths: Paths):
    return tracking.client(paths)
