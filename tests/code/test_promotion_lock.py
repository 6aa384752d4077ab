"""The promotion lock: where it lives, and that it excludes a second holder until released."""

import threading
import time

from mtl.promotion.registry import lock_dir_for, promotion_lock


def test_the_lock_lives_next_to_a_sqlite_store_so_every_workspace_shares_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MTL_LOCK_DIR", raising=False)
    assert lock_dir_for(f"sqlite:///{tmp_path}/shared/mlflow.db") == (tmp_path / "shared").resolve()
    assert lock_dir_for(f"file://{tmp_path}/store") == (tmp_path / "store").resolve()
    monkeypatch.setenv("MTL_LOCK_DIR", str(tmp_path / "locks"))
    assert lock_dir_for("http://mlflow:5000") == tmp_path / "locks"


def test_a_second_promotion_waits_for_the_first(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    events = []

    def hold(name):
        with promotion_lock("mtl-ecommerce", uri, tmp_path):
            events.append(f"{name} in")
            time.sleep(0.3)
            events.append(f"{name} out")

    first = threading.Thread(target=hold, args=("a",))
    first.start()
    time.sleep(0.1)  # a holds the lock
    second = threading.Thread(target=hold, args=("b",))
    second.start()
    first.join()
    second.join()
    assert events == ["a in", "a out", "b in", "b out"]
    # Another model's lock is independent.
    with promotion_lock("mtl-ecommerce", uri, tmp_path), promotion_lock("other-model", uri, tmp_path):
        pass


def test_runs_share_the_store_lock_and_gc_waits_for_all_of_them(tmp_path):
    """The project's store lock (mtl.locks.project_stores): every DVC command of a run holds it
    shared, so runs proceed together; `mtl gc` holds it exclusive, so it waits for them, and a
    run starting meanwhile waits for gc."""
    from mtl.locks import project_stores

    events = []

    def hold(name, shared, seconds):
        with project_stores(tmp_path, shared=shared):
            events.append(f"{name} in")
            time.sleep(seconds)
            events.append(f"{name} out")

    runs = [threading.Thread(target=hold, args=(n, True, 0.4)) for n in ("run1", "run2")]
    for t in runs:
        t.start()
    time.sleep(0.1)
    assert sorted(events) == ["run1 in", "run2 in"]  # both at once
    gc = threading.Thread(target=hold, args=("gc", False, 0.4))
    gc.start()
    for t in runs:
        t.join()
    while "gc in" not in events:
        time.sleep(0.01)
    late = threading.Thread(target=hold, args=("run3", True, 0.0))  # starts while gc holds it
    late.start()
    gc.join()
    late.join()
    assert events.index("gc in") > max(events.index("run1 out"), events.index("run2 out"))
    assert events[-3:] == ["gc out", "run3 in", "run3 out"]
