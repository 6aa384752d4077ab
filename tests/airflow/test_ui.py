"""The Airflow UI end to end, as a user meets it: log in, trigger mtl_training from its parameter
form, and see the run succeed, while a second run with another form, triggered beside it, runs at
the same time in its own workspace (LocalExecutor) and the checkout's params.yaml never changes.

Drives the system Chromium through Playwright (headless) against `live_airflow`; the run's outcome
is read from the REST API, and screenshots land in .test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from mtl import tracking, workspaces
from mtl.paths import Paths
from tests.airflow.live import FINISHED, LiveAirflow
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

DAG_ID = "mtl_training"
# Trigger-form fields to change (param key -> value), when the DAG declares them.
FORM_VALUES = {"epochs": 1}
# the run triggered beside it, through the API
OTHER_FORM = {"epochs": 2, "tasks": ["click", "purchase", "dwell"], "gate": "relaxed"}
ARTIFACTS = REPO / ".test-artifacts"
RUN_TIMEOUT = 480
# What a failed gate (a short-circuit, a normal outcome) skips; every other task must succeed.
GATED = {"approve", "promote"}


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """The browser, looked for before `live_airflow` starts (autouse runs first in its scope)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.fail(
        "the Airflow UI test needs a Chromium on PATH (chromium or chromium-browser): run `make test`, "
        "which installs it, or `apt-get install chromium`",
        pytrace=False,
    )


@pytest.fixture
def page(chromium: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        # Tall enough for the whole trigger form in one screenshot (the dialog scrolls inside a fixed layer).
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(60_000)  # two busy cores: the UI can be slow to render
        try:
            yield page
        finally:
            browser.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"airflow_{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def _log_in(page, airflow: LiveAirflow, next_path: str) -> None:
    """Through the simple auth manager's own login page, which any page redirects to."""
    page.goto(airflow.url + next_path)
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(airflow.username)
    page.get_by_label("Password").fill(airflow.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _fill_form(dialog, values: dict) -> dict:
    """Set each param field that the form has; the values actually set.

    Fields are found by the param key (the form names every input `element_<key>`), else by the
    label, which is the param's title or key.
    """
    filled = {}
    for key, value in values.items():
        field = dialog.locator(f'input[name="element_{key}"]')
        if field.count() == 0:
            field = dialog.get_by_label(key, exact=False)
        if field.count() == 0:
            continue
        field.first.fill(str(value))
        field.first.blur()
        filled[key] = value
    return filled


def test_trigger_from_the_ui_runs_the_pipeline(live_airflow: LiveAirflow, page):
    live_airflow.wait_for_dag(DAG_ID)
    live_airflow.unpause(DAG_ID)

    _log_in(page, live_airflow, f"/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog").filter(has_text=f"Trigger Dag - {DAG_ID}")
    dialog.wait_for()
    filled = _fill_form(dialog, FORM_VALUES)
    print(f"trigger form: set {filled or 'nothing (no such params)'}")
    _screenshot(page, "trigger_form")

    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/api/v2/dags/{DAG_ID}/dagRuns")
    ) as response:
        dialog.get_by_role("button", name="Trigger", exact=True).click()
    assert response.value.ok, f"trigger refused: HTTP {response.value.status} {response.value.text()}"
    run = response.value.json()
    run_id = run["dag_run_id"]
    for key, value in filled.items():
        assert run["conf"].get(key) == value, f"the form set {key}={value!r}, the run got conf {run['conf']}"

    # A second run at once, from the API, with another form: each works in its own workspace.
    other = live_airflow.trigger(DAG_ID, OTHER_FORM)
    _both_finish_with_params_yaml_untouched(live_airflow, [run_id, other])
    result = live_airflow.wait_run(DAG_ID, run_id, timeout=5)
    print(f"run {run_id}: {result.state}; tasks {result.tasks}")
    assert result.state == "success", live_airflow.explain(DAG_ID, result) + "\n" + live_airflow.log_tail()
    assert result.tasks, "the run has no task instances"
    skipped = {task for task, state in result.tasks.items() if state == "skipped"}
    bad = {task: state for task, state in result.tasks.items() if state != "success" and task not in skipped}
    assert not bad, f"tasks neither successful nor skipped: {bad}"
    # only what a failed gate (a short circuit: the gate task itself succeeds) skips
    assert skipped <= GATED, f"skipped {sorted(skipped)}; only {sorted(GATED)} may be, after a failed gate"
    second = live_airflow.wait_run(DAG_ID, other, timeout=5)
    assert second.state == "success", live_airflow.explain(DAG_ID, second)
    _ran_at_once_each_with_its_form(live_airflow, {run_id: FORM_VALUES, other: OTHER_FORM})

    page.goto(f"{live_airflow.url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}")
    page.get_by_text(run_id).first.wait_for()
    page.get_by_text("Success", exact=True).first.wait_for()
    _screenshot(page, "run_success")


def _both_finish_with_params_yaml_untouched(live: LiveAirflow, runs: list[str]) -> None:
    """Wait for ``runs``, checking the checkout's params.yaml byte for byte all the while."""
    params = live.project / "params.yaml"
    own = params.read_bytes()
    deadline = time.monotonic() + 2 * RUN_TIMEOUT
    while time.monotonic() < deadline:
        assert params.read_bytes() == own
        if all(live.api("GET", f"/dags/{DAG_ID}/dagRuns/{r}")["state"] in FINISHED for r in runs):
            return
        time.sleep(1)


def _interval(ti: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])


def _ran_at_once_each_with_its_form(live: LiveAirflow, forms: dict[str, dict]) -> None:
    """The runs overlapped (a task of one ran while a pipeline task of the other did), each trained
    with its own form into the project's MLflow store, and their finished workspaces are gone."""
    work = [[_interval(ti) for ti in live.api("GET", f"/dags/{DAG_ID}/dagRuns/{r}/taskInstances?limit=100")
             ["task_instances"] if ti["start_date"] and ti["end_date"] and ti["task_id"] != "configure"]
            for r in forms]
    assert any(a0 < b1 and b0 < a1 for a0, a1 in work[0] for b0, b1 in work[1]), work
    client = tracking.client(Paths.at(live.project))
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id
    for run_id, form in forms.items():
        (trained,) = [r for r in client.search_runs([experiment], f"tags.`mtl.airflow_run_id` = '{run_id}'")
                      if r.data.tags.get("mtl.role") != "baseline"]
        assert trained.data.params["train.epochs"] == str(form["epochs"])
        assert trained.data.tags["mtl.workspace"] == str(workspaces.path_for(live.project, run_id))
        assert not workspaces.path_for(live.project, run_id).exists()  # finished: removed
