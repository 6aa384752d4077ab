"""`mtl_training`: the pipeline of ``dvc.yaml`` as an Airflow DAG, triggered with a parameter form.

    configure (setup: the run's workspace, its params.yaml the form's values over the project's)
      -> generate -> validate -> preprocess -> baseline -> train -> score
      -> evaluate_task (mapped: one per model task) -> evaluate (reduce)
      -> gate (short-circuit: promotion runs only downstream of a pass)
      -> [approve: a person's yes, when params.yaml airflow.approval is on] -> promote
    close_workspace (teardown: runs whatever happened; removes the workspace, or keeps a failed one)

Every run works in a workspace of its own (mtl/workspaces.py: .mtl/runs/RUN, sharing the
project's DVC cache, MLflow store and registry), so the project's params.yaml is never written
and runs with different forms proceed at once; promotion stays serialised by the registry's
compare-and-set. Every pipeline task runs its stage there with ``dvc repro --single-item``
(mtl.pipeline.run_stage), the same path `mtl run` takes, so a rerun of a task whose inputs did
not change is a no-op. The scheduler parses this file constantly: module level reads params.yaml
and imports the name registries; everything heavy loads inside the tasks.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, chain, dag, get_current_context, setup, task, teardown

from mtl.orchestration import (
    CHAMPION_ASSET,
    LINKS_XCOM,
    default_args,
    deployment,
    form,
    gpu_task_args,
    project_dir,
    read_config,
)
from mtl.stagelist import BY_NAME, STAGES

# The project: its params.yaml and code are each run's starting point, its stores are shared.
PROJECT_DIR = project_dir(__file__)
CFG = read_config(PROJECT_DIR)  # the typed params.yaml, as every stage reads it
AIRFLOW = CFG.airflow
DVC_REMOTE = deployment(AIRFLOW)["dvc_remote"]
# Machines of a multi-node training: `train` is one, a `train_peer` task runs on each other.
NODES = CFG.train.distributed.nnodes

DOC_MD = f"""
# Multi-task training

Runs the stages of `dvc.yaml` in `{PROJECT_DIR}`. **Trigger** opens a form (architecture, tasks,
epochs, loss balancing, data source and window, gate strictness) whose values override
`params.yaml` for this run only; they are recorded on the MLflow run (tag `mtl.overrides`).

* `configure` checks the run's params (a bad value fails here, naming the key) and makes the run's
  workspace, `.mtl/runs/RUN`, with them; the project's `params.yaml` is never written.
  `close_workspace` removes it at the end, or keeps a failed run's for
  {AIRFLOW.keep_failed_hours:g} hours (`airflow.keep_failed_hours`) to debug.
* `evaluate_task` is mapped: one task instance per model task, then `evaluate` gathers them.
* `gate` judges the candidate against the current champion; when it fails, promotion is skipped
  and the champion is untouched. {"`approve` waits for a person (Required actions) before `promote`."
  if AIRFLOW.approval else "Set `airflow.approval: true` to have a person approve promotions."}
* {f"`push` uploads the run's DVC outputs to the remote `{DVC_REMOTE}` once they are evaluated."
  if DVC_REMOTE else "Set `airflow.dvc_remote` (or $MTL_DVC_REMOTE) to push each run's outputs to a DVC remote."}
* Bad data fails the run at `validate` (its GX Data Docs are linked from the task): the task log
  names each broken check; the batch and its report move to `data/quarantine/`. Drift warnings
  against the champion's training data appear in the same log and on the training run in MLflow.

Up to {AIRFLOW.max_active_runs} runs at once (`airflow.max_active_runs`), each in its own workspace;
training tasks queue on the `{AIRFLOW.gpu_pool}` pool.
"""


def _workspace() -> Path:
    """This run's workspace (mtl/workspaces.py), named by its run id."""
    from mtl.workspaces import path_for

    return path_for(PROJECT_DIR, get_current_context()["run_id"])


def _run(stage: str) -> Path:
    """Run one dvc.yaml stage in the run's workspace, streaming its output into the task log, then
    leave the links to what it produced (MLflow run, model version, Data Docs) on the task
    instance. A stage that does not finish leaves its mark: the workspace is kept for debugging."""
    import logging

    from mtl import workspaces
    from mtl.orchestration import stage_links
    from mtl.pipeline import run_stage

    root = _workspace()
    workspaces.started(root, stage)
    declared = BY_NAME[stage.split("@")[0]].force  # why, in mtl/stagelist.py
    force = declared == "always"
    if declared == "source_changed":
        from mtl.config import load_config
        from mtl.data.ingest.sources import source_changed
        from mtl.paths import Paths

        force = source_changed(load_config(root / "params.yaml").data, Paths.at(root))
    run_stage(stage, root=root, echo=logging.getLogger(f"mtl.{stage}").info, force=force)
    links = stage_links(root, stage)
    if links:
        get_current_context()["ti"].xcom_push(key=LINKS_XCOM, value=links)
    workspaces.finished(root, stage)
    return root


@setup
@task(retries=0)
def configure(**context) -> list[dict]:
    """Make this run's workspace with the form's values over params.yaml (validated first: nothing
    is made on error), and sweep expired workspaces of failed runs. Returns the run's model
    tasks, which `evaluate_task` maps over."""
    from mtl import workspaces
    from mtl.orchestration import open_run, overrides, read_config

    cfg = read_config(PROJECT_DIR)
    for gone in workspaces.sweep(PROJECT_DIR, cfg.airflow.keep_failed_hours):
        print(f"removed the expired workspace {gone}")
    dotted = overrides(dict(context["params"]), cfg)
    run = {"dag_id": context["dag"].dag_id, "run_id": context["run_id"]}
    root, params = open_run(PROJECT_DIR, dotted, run)
    print(f"workspace {root}; params.yaml for this run: {dotted or 'as in the project'}")
    context["ti"].xcom_push(key="overrides", value=dotted)
    return [{"index": i, "name": t["name"]} for i, t in enumerate(params["tasks"])]


@teardown
@task
def close_workspace() -> None:
    from mtl import workspaces

    print(workspaces.close(_workspace()))


@task
def run_stage(stage: str) -> None:
    _run(stage)


@task(map_index_template="{{ evaluated_task }}")
def evaluate_task(item: dict) -> None:
    """One model task's evaluation (DVC stage evaluate_task@<index in params.yaml tasks>)."""
    get_current_context()["evaluated_task"] = item["name"]  # shown as the map index in the UI
    _run(f"evaluate_task@{item['index']}")


@task(map_index_template="node {{ node }}")
def train_peer(node: int) -> None:
    """One more machine of a multi-node training (train.distributed.nnodes): `mtl train` on this
    worker, beside the `train` task, launches torchrun into the same rendezvous. Rank 0 (on
    whichever machine) writes the model into the shared workspace, where `train`'s DVC stage finds it."""
    import logging
    import subprocess
    import sys

    get_current_context()["node"] = node
    log = logging.getLogger("mtl.train_peer")
    proc = subprocess.Popen([sys.executable, "-m", "mtl.cli", "--project", str(_workspace()), "train"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        log.info(line.rstrip("\n"))
    if proc.wait() != 0:
        raise RuntimeError(f"`mtl train` on node {node} exited with {proc.returncode}")


@task
def push(remote: str) -> None:
    """Upload what dvc.lock records (raw data, features, model) to a DVC remote, so another clone
    or machine can `dvc pull` exactly what this run trained and evaluated."""
    import logging

    from mtl.pipeline import dvc

    dvc(["push", "--remote", remote], _workspace(), echo=logging.getLogger("mtl.push").info)


@task.short_circuit(ignore_downstream_trigger_rules=True)
def gate() -> bool:
    """Judge the candidate; a failed gate is a normal outcome: promotion is skipped, not failed
    (and airflow.notify hears of the rejection)."""
    from mtl.handoffs import Verdict
    from mtl.orchestration import notifier
    from mtl.paths import Paths

    verdict = Verdict.read(Paths.at(_run("gate")).gate_file)
    print(("PASSED: " if verdict.promote else "FAILED: ") + verdict.summary)
    if not verdict.promote and (tell := notifier(AIRFLOW, "rejection")) is not None:
        tell({**get_current_context(), "mtl_event": "rejection", "mtl_reason": verdict.summary})
    return verdict.promote


@task(outlets=[Asset(name=CHAMPION_ASSET.format(model=CFG.gate.model_name), group="mtl")])
def announce() -> None:
    """Update the Asset of the model's champion when this run promoted one (a scoring DAG with
    airflow.scoring.after_promotion follows it); skipped otherwise, so no event is sent."""
    from airflow.exceptions import AirflowSkipException

    from mtl.handoffs import Decision
    from mtl.paths import Paths

    decision = Decision.read_if_present(Paths.at(_workspace()).decision_file)
    if decision is None or not decision.promote:
        raise AirflowSkipException("no new champion: nothing to announce")
    print(f"new champion: {CFG.gate.model_name} version {decision.registered_version}")


def _approval():
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    return ApprovalOperator(
        task_id="approve",
        subject="Promote the candidate of {{ dag_run.run_id }} to champion?",
        body="The gate passed. Its verdict, task by task, is in data/06_promotion/gate.json and on the "
        "MLflow run of the candidate (see the task's links). Approve to move the champion alias.",
        response_timeout=timedelta(hours=AIRFLOW.approval_timeout_hours),
        defaults="Reject",  # no answer in time: the champion stays
        retries=0,
    )


@dag(
    dag_id="mtl_training",
    schedule=None,  # the form in the UI, `airflow dags trigger`, or mtl_retraining
    catchup=False,
    max_active_runs=AIRFLOW.max_active_runs,  # each run in a workspace of its own
    tags=["mtl", "training", "dvc"],
    doc_md=DOC_MD,
    params={name: Param(**spec) for name, spec in form(CFG).items()},
    default_args=default_args(AIRFLOW),
)
def mtl_training():
    configured = configure()
    # Training work runs in the GPU pool (and queue, under Celery) so that a worker's GPUs are
    # never oversubscribed (Stage.gpu); retries as each stage declares.
    gpu = gpu_task_args(AIRFLOW)
    steps, by_name = [configured], {}
    for stage in STAGES:  # mtl/stagelist.py: the same list as the CLI's and dvc.yaml's
        args = {"retries": stage.retries} if stage.retries is not None else {}
        if stage.per_task:
            step = evaluate_task.expand(item=configured)
        elif stage.name == "gate":
            step = gate()  # a short circuit: a failed verdict skips promotion instead of failing it
        else:
            step = run_stage.override(task_id=stage.name, **args, **(gpu if stage.gpu else {}))(stage.name)
        steps.append(step)
        by_name[stage.name] = step
        if stage.name == "gate" and AIRFLOW.approval:
            steps.append(_approval())
    if AIRFLOW.scoring.after_promotion:
        steps.append(announce())
    if NODES > 1:
        # each peer needs the GPU pool slot and queue too: size the pool to the machines
        by_name["baseline"] >> train_peer.override(**gpu).expand(node=list(range(1, NODES))) >> by_name["score"]
    chain(*steps)
    ends = [steps[-1]]
    if DVC_REMOTE:
        # Beside the gate, not after it: a rejected candidate's data and model are worth sharing too.
        ends.append(push(DVC_REMOTE))
        by_name["evaluate"] >> ends[-1]
    ends >> close_workspace().as_teardown(setups=configured)


mtl_training()
