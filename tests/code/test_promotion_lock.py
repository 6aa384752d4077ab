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
