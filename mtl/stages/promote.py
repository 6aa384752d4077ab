"""Stage ``promote``: the second half of promotion. Registers the candidate as a model version
(every candidate) and moves ``champion`` to it only if the gate passed, the packaged model loads
and scores in a fresh process, and the champion the gate judged against is still the champion
(else it is judged again, under the lock). Writes the decision and the model card.

Under a DVC experiment (`dvc exp run`) nothing is registered and the champion never moves: the
decision says what the gate found and how to promote the experiment for real (apply it, then
`mtl promote`), so trying variants can never replace the model in production."""

from __future__ import annotations

import json
from pathlib import Path

from mtl.config import Config
from mtl.handoffs import Decision, Verdict
from mtl.paths import Paths
from mtl.stages.common import read_json


def run(cfg: Config, paths: Paths) -> Decision:
    import mlflow

    from mtl import tracking
    from mtl.promotion import registry, service
    from mtl.stages.gate import candidate

    judged = candidate(cfg, paths)
    verdict = Verdict.read(paths.gate_file)
    if verdict.candidate_run_id != judged.run_id:
        raise FileNotFoundError(f"{paths.gate_file} judged run {verdict.candidate_run_id}, not the current "
                                f"candidate {judged.run_id}: run the gate stage first (dvc repro gate)")
    tracking.configure(paths)
    lineage = _lineage(paths, judged.run_id)
    experiment = tracking.dvc_experiment()
    if experiment:
        return _experiment(paths, judged, verdict, lineage, experiment)
    metric_tags = {f"test_{k}_{task}": f"{e[k]:.5f}" for task, e in judged.metrics.items()
                   for k in ("auc", "rmse", "wape", "pinball") if e.get(k) is not None}
    decision = service.promote(cfg, judged, verdict, lineage | metric_tags, tracking.tracking_uri(paths),
                               registry.lock_for(paths, judged.name))
    version = decision.version
    card = _write_card(paths, judged, version, lineage, decision)
    decision.write(paths.decision_file)
    if decision.registered_version:
        registry.describe_version(judged.name, decision.registered_version, card)
    if decision.already_champion:  # a rerun: the run's own decision stays as it was logged
        print(f"promotion: {decision.summary}")
        return decision
    promoted = decision.promote
    with mlflow.start_run(run_id=judged.run_id):
        mlflow.log_dict(decision.to_dict(), "promotion/decision.json")
        mlflow.log_artifact(str(paths.model_card_md), "promotion")
        mlflow.log_artifact(str(paths.model_card_html), "promotion")
        mlflow.set_tag("mtl.promotion", "promoted" if promoted else "rejected")
        mlflow.set_tag("mtl.registered_version", version)
    print(card)
    print(f"promotion: {decision.summary} ({judged.name} version {version}"
          + (" is @champion)" if promoted else " registered, champion unchanged)"))
    return decision


def _experiment(paths: Paths, judged, verdict: Verdict, lineage: dict, name: str) -> Decision:
    """A DVC experiment's decision: the gate's verdict, recorded; nothing registered or moved."""
    import dataclasses

    import mlflow

    gate = "would pass the gate" if verdict.promote else "would not pass the gate"
    summary = (f"experiment {name}: not registered, the champion is unchanged (experiments never promote); "
               f"it {gate} ({verdict.summary}). To promote it: `dvc exp apply {name}`, then `mtl promote` "
               f"(`mtl run` for a queued experiment)")
    fields = {f.name: getattr(verdict, f.name) for f in dataclasses.fields(Verdict)}
    decision = Decision(**(fields | {"promote": False, "summary": summary}))
    card = _write_card(paths, judged, f"none (experiment {name})", lineage, decision)
    decision.write(paths.decision_file)
    with mlflow.start_run(run_id=judged.run_id):
        mlflow.log_dict(decision.to_dict(), "promotion/decision.json")
        mlflow.log_artifact(str(paths.model_card_md), "promotion")
        outcome = "passed" if verdict.promote else "failed"
        mlflow.set_tag("mtl.promotion", f"experiment: not registered ({outcome} the gate)")
    print(card)
    print(f"promotion: {summary}")
    return decision


def _lineage(paths: Paths, run_id: str) -> dict[str, str]:
    """What the registered version records about where it came from."""
    from mtl import tracking
    from mtl.data.features import Transform

    return tracking.lineage_tags(paths) | {
        "mtl.run_id": run_id,
        "mtl.validation": tracking.validation_tags(read_json(paths.validation_result, "validate"))["mtl.validation"],
        "mtl.transform_sha256": Transform.load(paths.transform_file).fingerprint(),
    }


def _write_card(paths: Paths, judged, version: str, lineage: dict, decision: Decision) -> str:
    """The model card (markdown and HTML with the ROC and reliability plots); returns the markdown."""
    from mtl.promotion import model_card

    evaluation = read_json(paths.metrics_file, "evaluate")
    card = {"model_name": judged.name, "version": version, "run_id": judged.run_id, "lineage": lineage,
            "metrics": judged.metrics, "comparison": decision.comparison, "decision": decision.to_dict(),
            "mtl_gain": evaluation.get("mtl_gain")}
    markdown = model_card.markdown(card)
    paths.promotion_dir.mkdir(parents=True, exist_ok=True)
    paths.model_card_md.write_text(markdown)
    paths.model_card_html.write_text(model_card.to_html(card, _read_plots(paths.plots_dir),
                                                        _read_plots(paths.calibration_dir)))
    return markdown


def _read_plots(folder: Path) -> dict[str, list[dict]]:
    if not folder.is_dir():
        return {}
    return {p.stem.split("_", 1)[1]: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
