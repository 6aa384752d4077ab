"""The ``retention`` section: what `mtl gc` and the `mtl_maintenance` DAG remove, and when.

Every scheduled run leaves things behind (a DVC cache entry per changed output, an MLflow run and
a logged model, a registry version, score files, quarantined batches, Airflow history). The
policy says how long each stays. What lineage needs is never removed, whatever the numbers: the
registry version and DVC data (raw data and features with the fitted transform) of every version
that was ever champion, and the full model of the newest ``champions`` of them (the champion and
the one `mtl rollback` restores among them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mtl.config.base import Frozen

Days = Annotated[float, Field(ge=0)]


class RetentionConfig(Frozen):
    # When mtl_maintenance runs `mtl gc` (cron or preset); null: only when triggered.
    schedule: str | None = "@daily"
    # The newest N registry versions keep everything (model, run, DVC data) whatever their decision.
    versions: Annotated[int, Field(ge=0)] = 3
    # The newest N versions that were ever champion keep their full model: at least the champion
    # and the previous champion (2); 3 also survives a rollback followed by another one.
    champions: Annotated[int, Field(ge=2)] = 3
    # Any other version, a run without one (a DVC experiment, a failed or tuning run) and its
    # logged model expire this many days after they were created: the run, its artifacts and the
    # model are deleted from MLflow (`mlflow gc`), and the DVC data only they used leaves the cache.
    candidate_days: Days = 14.0
    # An expired version in the registry: keep (its tags stay: the decision, its reason, the test
    # metrics; tagged mtl.artifacts=expired) or delete (removed from the registry). A version that
    # was ever champion is never deleted.
    expired_versions: Literal["keep", "delete"] = "keep"
    # Quarantined batches (validation.quarantine) and their reports, after this many days.
    quarantine_days: Days = 30.0
    # The daily score files (airflow.scoring.output) and their manifests, by the day they score.
    score_days: Days = 90.0
    # Airflow's task history of this project's DAGs (`airflow db clean`) and their task logs.
    airflow_days: Days = 30.0
