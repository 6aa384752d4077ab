"""The suite relies on pytest-xdist's `--dist loadgroup` to keep the tests sharing one live
Airflow (or one Celery stack) on one worker. A pytest/xdist pairing where the group is silently
ignored (pytest 9.2 with xdist 3.8) would start one per worker: catch that here, in seconds."""

from __future__ import annotations

import subprocess
import sys


def test_xdist_group_keeps_its_tests_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.xdist_group('shared')\n"
        + "".join(f"def test_{i}():\n    open('{tmp_path}/w{i}', 'w').write(os.environ['PYTEST_XDIST_WORKER'])\n"
                  for i in range(4))
    )
    out = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q",
                          "-p", "no:cacheprovider", str(tmp_path / "test_grouped.py")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    workers = {(tmp_path / f"w{i}").read_text() for i in range(4)}
    assert len(workers) == 1, f"grouped tests ran on {sorted(workers)}"
