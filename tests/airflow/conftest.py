"""A live Airflow shared by the tests of this folder that need the real servers (all of them slow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.airflow.live import LiveAirflow
from tests.conftest import SMALL_OVERRIDES, copy_project, set_params

# The small dataset, and fewer bootstrap resamples: a whole run in about a minute. Floors that
# the small model clears, so the UI's run goes through promotion; retraining on the newest 10 of
# the log's 14 days, so the window shows.
LIVE_OVERRIDES = {**SMALL_OVERRIDES, "evaluation.bootstrap": 50, "gate.tasks.click.floor": 0.5,
                  "gate.tasks.add_to_cart.floor": 0.5, "gate.tasks.purchase.floor": 0.5,
                  "airflow.retraining.window_days": 10,
                  # No clock starts a run: only the tests' triggers and the Asset do. A cron would
                  # race them (on a Sunday, unpausing mtl_retraining started its @weekly run,
                  # which held its one active run while the Asset's run waited).
                  "airflow.retraining.scan_schedule": None, "airflow.retraining.schedule": None}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses `live_airflow` is slow, marked or not: `-m "not slow"` never starts Airflow.
    And they all run on one xdist worker, so that one Airflow serves them."""
    for item in items:
        if "live_airflow" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("live_airflow"))


@pytest.fixture(scope="session")
def live_airflow(tmp_path_factory) -> Iterator[LiveAirflow]:
    """`airflow standalone` over a small project copy, started once per session, stopped at its end.

    Tests share it, so each should trigger its own runs and look only at those (by run_id); a test
    that needs other params can write a DAG file or change params.yaml in ``live_airflow.project``.
    """
    project = copy_project(tmp_path_factory.mktemp("live_airflow") / "project")
    set_params(project, LIVE_OVERRIDES)
    airflow = LiveAirflow(project).start()
    print(f"\nAirflow up at {airflow.url} in {airflow.startup_seconds:.0f} s (log: {airflow.log_path})")
    try:
        yield airflow
    finally:
        airflow.stop()
