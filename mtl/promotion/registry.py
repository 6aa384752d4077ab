"""The MLflow Model Registry side of promotion: the only code that moves model aliases.

Every candidate the promote stage judges becomes a model version, tagged with its metrics, its
lineage (data and transform hashes, commit, pipeline run, MLflow run, validation result) and the
gate's decision, so the registry is the history of every decision, not only of the winners.
Aliases: ``champion`` (what serves) and ``previous_champion`` (what `mtl rollback` restores).

Moving ``champion`` is a compare-and-set: under a lock (a PostgreSQL advisory lock when the
store is PostgreSQL, a file lock next to the store otherwise), the champion is read again, and
if it is not the one the candidate was judged against, the caller re-judges against the new
one before anything moves. Two runs finishing at once therefore cannot both win, and the loser
is compared with the winner, not with a champion that is already gone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mtl.locks import exclusive

CHAMPION = "champion"
PREVIOUS = "previous_champion"
# Version tags written here (the rest are the lineage tags of mtl.tracking and the metrics).
DECISION = "mtl.decision"  # promoted | rejected | rolled_back
SUMMARY = "mtl.decision_summary"
REPLACED = "mtl.replaced_version"  # the champion this version replaced when it was promoted


class RegistryError(RuntimeError):
    """A registry request that cannot be carried out (no previous champion, unknown version)."""


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def get_alias(name: str, alias: str = CHAMPION):
    """The ModelVersion holding ``alias``, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(err).lower():
            return None
        raise


def get_champion(name: str):
    return get_alias(name, CHAMPION)


def champion_artifact(name: str, artifact: str, dst: Path) -> tuple[str, Path] | None:
    """(version, local path) of one file packaged with the champion model (e.g. the transform),
    downloaded into ``dst``; None when there is no champion."""
    import mlflow

    champion = get_champion(name)
    if champion is None:
        return None
    uri = f"models:/{name}/{champion.version}/artifacts/{artifact}"
    # one small file: MLflow's "Downloading artifacts" bar would only be noise in the stage's output
    quiet, os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"), "false"
    try:
        return str(champion.version), Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    finally:
        if quiet is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = quiet


def register_candidate(name: str, model_uri: str, run_id: str, tags: dict[str, str]):
    """The candidate's model version: every candidate gets one, promoted or not, and only one
    (judging the same run again, say after `dvc repro --force promote`, reuses its version)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        existing = _client().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException:
        existing = []
    if existing:
        version = max(existing, key=lambda v: int(v.version))
        tag_version(name, version.version, tags)
        return version
    return mlflow.register_model(model_uri, name, tags=tags)


def describe_version(name: str, version: str, text: str) -> None:
    """The version's description (the model card, shown on its page in the MLflow UI)."""
    _client().update_model_version(name, version, description=text)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


@contextmanager
def promotion_lock(name: str, tracking_uri: str, lock_dir: Path) -> Iterator[None]:
    """Exclusive access to ``name``'s aliases among every process using the same store.

    PostgreSQL store: a session advisory lock, which holds across machines. Otherwise a file
    lock in ``lock_dir`` (next to the SQLite file), which holds across the processes of one
    machine; several machines behind one tracking server need a PostgreSQL store to share it.
    """
    key = int.from_bytes(hashlib.sha256(f"mtl-promotion:{name}".encode()).digest()[:8], "big", signed=True)
    if tracking_uri.startswith("postgresql"):
        import sqlalchemy

        engine = sqlalchemy.create_engine(tracking_uri, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
        return
    with exclusive(lock_dir / f"promotion-{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock",
                   f"another promotion of {name}"):
        yield


@dataclass(frozen=True)
class Outcome:
    promoted: bool
    champion_before: str | None  # the champion version the final decision was made against
    rejudged: bool  # the champion had changed since evaluation, and the candidate was judged again
    decision: object  # what ``judge`` returned last


def compare_and_promote(name: str, version: str, judged_against: str | None,
                        judge: Callable[[object | None], object], lock: Callable[[], object]) -> Outcome:
    """Move ``champion`` to ``version`` if its decision still holds against the current champion.

    ``judged_against`` is the champion version the candidate was evaluated against (None: no
    champion then); ``judge(champion_version_or_None)`` returns a decision with a ``promote``
    attribute; it is called again, under the lock, only if the champion changed in between.
    """
    with lock():
        current = get_champion(name)
        current_version = str(current.version) if current is not None else None
        rejudged = current_version != (str(judged_against) if judged_against is not None else None)
        decision = judge(current) if rejudged else None
        if decision is not None and not decision.promote:
            return Outcome(False, current_version, True, decision)
        client = _client()
        if current is not None:
            client.set_registered_model_alias(name, PREVIOUS, current.version)
            client.set_model_version_tag(name, version, REPLACED, str(current.version))
        client.set_registered_model_alias(name, CHAMPION, version)
        return Outcome(True, current_version, rejudged, decision)


def rollback(name: str, lock: Callable[[], object]) -> tuple[str, str]:
    """Make ``previous_champion`` the champion again; returns (restored, demoted) versions."""
    with lock():
        current, previous = get_champion(name), get_alias(name, PREVIOUS)
        if current is None:
            raise RegistryError(f"{name} has no champion: nothing to roll back")
        if previous is None:
            raise RegistryError(f"{name} has no previous_champion (version {current.version} is the first "
                                "champion): nothing to roll back to")
        client = _client()
        client.set_registered_model_alias(name, CHAMPION, previous.version)
        # The alias chain steps back too: previous becomes what the restored version replaced.
        before = previous.tags.get(REPLACED)
        if before and before != str(current.version):
            client.set_registered_model_alias(name, PREVIOUS, before)
        else:
            client.delete_registered_model_alias(name, PREVIOUS)
        client.set_model_version_tag(name, current.version, DECISION, "rolled_back")
        return str(previous.version), str(current.version)


def version_record(name: str, version: str) -> dict:
    """Everything the registry and the tracking store know about one version, for `mtl lineage`."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as err:
        raise RegistryError(f"{name} has no version {version!r}") from err
    record = {"name": name, "version": mv.version, "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags),
              "aliases": list(getattr(mv, "aliases", []) or [])}
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            record["params"] = dict(run.data.params)
            record["run_tags"] = {k: v for k, v in run.data.tags.items() if k.startswith("mtl.")}
        except MlflowException:
            record["params"], record["run_tags"] = {}, {}
    return record


def champion_chain(name: str, version: str, limit: int = 50) -> list[str]:
    """``version`` and the champions it replaced, newest first (from the replaced-version tags)."""
    client = _client()
    chain = [str(version)]
    while len(chain) < limit:
        replaced = client.get_model_version(name, chain[-1]).tags.get(REPLACED)
        if not replaced or replaced in chain:
            break
        chain.append(replaced)
    return chain


def lock_dir_for(tracking_uri: str) -> Path:
    """Where the file lock lives: next to a SQLite store (so every workspace sharing the store
    shares the lock), else $MTL_LOCK_DIR, else a per-user folder."""
    if os.environ.get("MTL_LOCK_DIR"):
        return Path(os.environ["MTL_LOCK_DIR"])
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///"):]).resolve().parent
    if tracking_uri.startswith("file:"):
        from urllib.parse import urlparse

        return Path(urlparse(tracking_uri).path).resolve()
    return Path.home() / ".cache" / "mtl" / "locks"


def lock_for(paths, name: str) -> Callable[[], object]:
    """The promotion lock of model ``name`` in this project's store (see promotion_lock)."""
    from mtl import tracking

    uri = tracking.tracking_uri(paths)
    return lambda: promotion_lock(name, uri, lock_dir_for(uri))
