"""An exclusive file lock that says what it waits for.

Two `mtl run`s in one checkout, or two promotions of one model, take turns. The one that waits
says so at once and then every minute, naming the lock and the process holding it (its pid is
written in the lock file), instead of sitting silent.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from mtl.runstate import STATE_DIR

REPEAT_SECONDS = 60.0


@contextmanager
def exclusive(path: Path, what: str, poll_seconds: float = 1.0, say=None, shared: bool = False) -> Iterator[None]:
    """Hold the lock at ``path``; while another process holds it, wait, and say so through
    ``say`` (default: a line on stderr) with ``what`` the lock guards. ``shared``: any number of
    shared holders at once, none while an exclusive one holds it (a reader-writer lock)."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:  # not "w": a waiter must not wipe the holder's pid
        started = last = None
        while True:
            try:
                fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if started is None or now - last >= REPEAT_SECONDS:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    waited = f" ({now - started:.0f} s so far)" if started is not None else ""
                    say(f"waiting for {what}: {path} is held by pid {holder}{waited}")
                    started, last = started or now, now
                time.sleep(poll_seconds)
        if started is not None:
            say(f"{what}: lock acquired after {time.monotonic() - started:.0f} s")
        if not shared:  # the holder a waiter names; shared holders are many, so none is written
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        try:
            yield
        finally:
            if not shared:
                fh.seek(0)
                fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def project_stores(home: Path, shared: bool) -> AbstractContextManager[None]:
    """The lock on a project's stores (<home>/.mtl/store.lock): shared by every DVC command of a
    run (mtl/pipeline.py), exclusive for `mtl gc`, which must not remove a cache entry a stage is
    writing before its dvc.lock lists it."""
    what = "`mtl gc` (it removes what the retention policy expires)" if shared else "the runs using the project's stores"
    return exclusive(Path(home) / STATE_DIR / "store.lock", what, shared=shared)
