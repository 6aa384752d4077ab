"""Feedback on long work (mtl/progress.py, mtl/locks.py): periodic lines where no one watches a
terminal (an Airflow task log, CI), a bar where someone does, and a message while waiting on a lock."""

import threading
import time

from mtl import progress
from mtl.locks import exclusive


def test_a_log_gets_periodic_lines_and_a_last_one(monkeypatch, capsys):
    monkeypatch.setenv("MTL_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "mtl_training")  # a task log, even on a terminal
    assert list(progress.iterate(range(3), "scoring", total=3, unit="chunks")) == [0, 1, 2]
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("scoring: 1 of 3 chunks (33%)") and lines[-1].endswith("(done)")
    assert len(lines) == 4


def test_quiet_work_prints_nothing_before_the_interval(monkeypatch, capsys):
    monkeypatch.setenv("MTL_PROGRESS_SECONDS", "3600")
    with progress.Progress("preprocess", 10) as p:
        p.update(10)
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True)
    with progress.Progress("text encoding", 5, "texts") as p:
        assert p.bar is not None
        p.update(5)
        assert p.bar.n == 5


def test_waiting_on_a_lock_says_who_holds_it(tmp_path):
    lock = tmp_path / "run.lock"
    held, release = threading.Event(), threading.Event()

    def holder():
        with exclusive(lock, "the first run"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    said = []
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    with exclusive(lock, "another pipeline run", poll_seconds=0.1, say=said.append):
        waited = time.monotonic() - started
    thread.join()
    assert waited >= 1.0
    assert said[0].startswith(f"waiting for another pipeline run: {lock} is held by pid ")
    assert said[-1].startswith("another pipeline run: lock acquired after")
    assert lock.read_text() == ""  # released: no stale pid


def test_nothing_to_wait_for_says_nothing(tmp_path):
    said = []
    with exclusive(tmp_path / "free.lock", "a run", say=said.append):
        pass
    assert said == []
