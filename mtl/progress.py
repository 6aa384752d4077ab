"""Feedback on long work: a live bar on a terminal, periodic lines in a log.

A stage that works for minutes (preprocessing passes, text encoding, batch scoring, the
bootstrap) reports through ``Progress``. On a terminal that is a tqdm bar. Anywhere else (an
Airflow task log, CI, output piped to a file) a bar's carriage returns make one unreadable line,
so it prints a plain line every ``MTL_PROGRESS_SECONDS`` (default 30) seconds instead, and one at
the end: ``preprocess, pass 1 of 2: 400,000 of 1,000,000 rows (40%), 12 s``.
"""

from __future__ import annotations

import os
import sys
import time


def interactive() -> bool:
    """A person watches: a terminal, and not an Airflow task (whose log is a file)."""
    return sys.stderr.isatty() and "AIRFLOW_CTX_DAG_ID" not in os.environ


class Progress:
    """``with Progress("scoring", total=rows, unit="rows") as p: ... p.update(n)``."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "rows", enabled: bool = True):
        self.desc, self.total, self.unit, self.done = desc, total, unit, 0
        self.every = float(os.environ.get("MTL_PROGRESS_SECONDS", "30"))
        self.started = self.last = time.perf_counter()
        self.bar = None
        self.quiet = not enabled
        if enabled and interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, mininterval=0.5)

    def __enter__(self) -> "Progress":
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.quiet and time.perf_counter() - self.last >= self.every:
            self._line()

    def _line(self, end: bool = False) -> None:
        self.last = time.perf_counter()
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        of = f" of {self.total:,}" if self.total else ""
        print(f"{self.desc}: {self.done:,}{of} {self.unit}{share}, {self.last - self.started:.0f} s"
              + (" (done)" if end else ""), file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and exc[0] is None and self.last > self.started:
            self._line(end=True)  # a line already went out: say it finished


def iterate(iterable, desc: str, total: int | None = None, unit: str = "batches", weight=None):
    """Yield from ``iterable`` reporting progress; ``weight(item)`` counts an item (default 1)."""
    with Progress(desc, total, unit) as p:
        for item in iterable:
            yield item
            p.update(weight(item) if weight else 1)
