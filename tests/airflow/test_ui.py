"""The Airflow UI end to end, as a user meets it: log in, trigger mtl_training from its parameter
form, and see the run succeed.

Drives the system Chromium through Playwright (headless) against `live_airflow`; the run's outcome
is read from the REST API, and screenshots land in .test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtl import workspaces
from tests.airflow.live import LiveAirflow
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAG_ID = "mtl_training"
# Trigger-form fields to change (param key -> value), when the DAG declares them.
FORM_VALUES = {"epochs": 1}
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

    result = live_airflow.wait_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    print(f"run {run_id}: {result.state}; tasks {result.tasks}")
    assert result.state == "success", live_airflow.explain(DAG_ID, result) + "\n" + live_airflow.log_tail()
    assert result.tasks, "the run has no task instances"
    skipped = {task for task, state in result.tasks.items() if state == "skipped"}
    bad = {task: state for task, state in result.tasks.items() if state != "success" and task not in skipped}
    assert not bad, f"tasks neither successful nor skipped: {bad}"
    if skipped:
        verdict = json.loads((workspaces.latest(live_airflow.project) / "data" / "06_promotion" / "gate.json").read_text())
        assert skipped <= GATED and not verdict["promote"], (
            f"skipped {sorted(skipped)}; only {sorted(GATED)} may be, after a failed gate (verdict: {verdict})"
        )

    page.goto(f"{live_airflow.url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}")
    page.get_by_text(run_id).first.wait_for()
    page.get_by_text("Success", exact=True).first.wait_for()
    _screenshot(page, "run_success")
