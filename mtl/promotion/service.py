"""Promotion as one service. The gate is its first half, a verdict on the candidate against the
current champion; promotion is the second: register the candidate (every candidate becomes a
version), check the packaged model loads in a fresh process, and move ``champion`` by
compare-and-set, judging again if the champion changed since the verdict.

The caller supplies the candidate (its run, model, test metrics and the test rows it was scored
on) and gets a typed Verdict or Decision back (mtl/handoffs.py); files, model cards and MLflow
run logging stay in the stages.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mtl.config import Config
from mtl.handoffs import Decision, Verdict
from mtl.promotion import registry

DECISION_KEYS = ("promote", "summary", "tasks", "slices", "improvement")


@dataclass
class Candidate:
    name: str  # the registered model
    run_id: str
    model_uri: str
    metrics: dict  # per-task test metrics (metrics.json's "tasks")
    rows_file: Path  # the raw test rows...
    scores_file: Path  # ...and the candidate's scores of them
    # a panel's raw daily history: what its served model takes (the load check's sample)
    panel_file: Path | None = None

    @cached_property
    def rows(self):
        import pandas as pd

        return pd.read_parquet(self.rows_file)

    @cached_property
    def scores(self):
        import pandas as pd

        return pd.read_parquet(self.scores_file)


def already_champion(champion, candidate: Candidate, kind: type[Verdict] = Verdict) -> Verdict | None:
    """The verdict when the candidate's own run already holds the alias (a rerun): nothing to judge."""
    if champion is None or champion.run_id != candidate.run_id:
        return None
    return kind(model_name=candidate.name, candidate_run_id=candidate.run_id, promote=False, already_champion=True,
                champion_version=str(champion.version), summary=f"already champion (version {champion.version})")


def judge(cfg: Config, candidate: Candidate, judged: dict) -> Callable[[object], object]:
    """The gate's decision as a function of the champion (a ModelVersion, or None), recording what
    it judged against in ``judged`` (champion version, paired comparison)."""
    import mlflow

    from mtl.evaluation.compare import compare
    from mtl.promotion.policy import decide

    types = {t.name: t.type for t in cfg.tasks}

    def decision(champion):
        comparison = None
        if champion is not None:
            # The champion scores the very rows the candidate was judged on, through its own
            # packaged transform; both are compared on the same bootstrap resamples (paired).
            model = mlflow.pyfunc.load_model(f"models:/{candidate.name}/{champion.version}")
            scores = model.predict(candidate.rows[model.metadata.get_input_schema().input_names()])
            comparison = compare(candidate.scores, scores, candidate.rows, cfg)
        judged.update(champion=str(champion.version) if champion is not None else None, comparison=comparison)
        return decide(candidate.metrics, comparison, types, cfg.gate)

    return decision


def verdict(cfg: Config, candidate: Candidate) -> Verdict:
    """The gate: the candidate against the current champion, or the floors alone without one."""
    champion = registry.get_champion(candidate.name)
    if (same := already_champion(champion, candidate)) is not None:
        return same
    judged: dict = {}
    decision = judge(cfg, candidate, judged)(champion)
    return Verdict(model_name=candidate.name, candidate_run_id=candidate.run_id, **decision.to_dict(),
                   champion_version=judged["champion"], comparison=judged["comparison"])


def promote(cfg: Config, candidate: Candidate, gate: Verdict, tags: dict[str, str], tracking_uri: str,
            lock: Callable[[], object]) -> Decision:
    """Register the candidate and move ``champion`` to it when ``gate`` (this candidate's verdict)
    passed, the package loads in a fresh process, and the verdict still holds against the
    champion of the moment (judged again, under ``lock``, if it changed). Returns the decision
    with ``registered_version``; an already-champion candidate is neither registered again nor
    judged."""
    champion = registry.get_champion(candidate.name)
    if (same := already_champion(champion, candidate, Decision)) is not None:
        return same
    judged: dict = {"champion": gate.champion_version, "comparison": gate.comparison}
    decide = judge(cfg, candidate, judged)
    current = str(champion.version) if champion is not None else None
    if current != judged["champion"]:  # the champion moved since the gate ran: judge again
        decision = decide(champion).to_dict()
    else:
        decision = {k: getattr(gate, k) for k in DECISION_KEYS}
    version = str(registry.register_candidate(candidate.name, candidate.model_uri, candidate.run_id, tags).version)
    load = _load_check(cfg, candidate, version, tracking_uri) if decision["promote"] else None
    if load is not None and not load.passed:
        decision |= {"promote": False, "summary": f"rejected: {load.reason}"}
    rejudged = False
    if decision["promote"]:
        outcome = registry.compare_and_promote(candidate.name, version, judged["champion"], decide, lock)
        rejudged = outcome.rejudged
        if outcome.decision is not None:
            decision = outcome.decision.to_dict()
        if not outcome.promoted:
            decision["promote"] = False
    registry.tag_version(candidate.name, version, {
        registry.DECISION: "promoted" if decision["promote"] else "rejected",
        registry.SUMMARY: decision["summary"][:4000]})
    return Decision(model_name=candidate.name, candidate_run_id=candidate.run_id, **decision,
                    registered_version=version, champion_version=judged["champion"], rejudged=rejudged,
                    comparison=judged["comparison"], load_check=dataclasses.asdict(load) if load is not None else None)


def _load_check(cfg: Config, candidate: Candidate, version: str, tracking_uri: str):
    """The registered package, loaded and scoring a sample of the test rows in a new interpreter."""
    from mtl.promotion.load_check import check_in_fresh_process

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "rows.parquet"
        if candidate.panel_file is not None and cfg.data.panel is not None:
            import pandas as pd

            from mtl.data.features.framing import recent_history

            recent_history(pd.read_parquet(candidate.panel_file), cfg.data.panel).to_parquet(sample, index=False)
        else:
            candidate.rows.head(256).to_parquet(sample, index=False)
        return check_in_fresh_process(f"models:/{candidate.name}/{version}", sample,
                                      {t.name: t.type for t in cfg.tasks}, tracking_uri)
