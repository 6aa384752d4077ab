"""The day logic of the `mtl_scoring` DAG, kept out of the DAG file so it is testable and cheap
to parse: which day a run scores, and where that day's rows and scores live."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from mtl.data.ingest.adapters.base import is_csv
from mtl.data.ingest.adapters.files import PARQUET_SUFFIXES

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def run_day(form_day: str | None, interval_start: datetime | None, now: datetime | None = None) -> str:
    """The day a run scores, YYYY-MM-DD: the form's, else the day its data interval starts on
    (a @daily run at midnight scores the day that just ended), else yesterday (UTC)."""
    if form_day:
        if not DAY.fullmatch(form_day):
            raise ValueError(f"day {form_day!r} is not a date: use YYYY-MM-DD")
        date.fromisoformat(form_day)  # 2026-02-30 is not a day
        return form_day
    if interval_start is not None:
        return interval_start.astimezone(timezone.utc).date().isoformat()
    return ((now or datetime.now(timezone.utc)) - timedelta(days=1)).date().isoformat()


def _place(root: Path, pattern: str, day: str) -> Path:
    path = Path(pattern.replace("{day}", day))
    return path if path.is_absolute() else root / path


def day_output(root: Path, pattern: str, day: str) -> Path:
    return _place(root, pattern, day)


def day_input(root: Path, pattern: str, day: str) -> Path | None:
    """The day's input if it is there: the path itself (a file or a non-empty folder), else, for a
    pattern without a suffix, <path>.parquet or <path>.csv. Files still being written (a dot-name
    or a .tmp/.part suffix) do not count."""
    path = _place(root, pattern, day)
    candidates = [path]
    if not (path.name.lower().endswith(PARQUET_SUFFIXES) or is_csv(path)):
        candidates += [path.with_name(path.name + ".parquet"), path.with_name(path.name + ".csv")]
    for p in candidates:
        if p.is_file():
            return p
        if p.is_dir() and any(f.is_file() and not f.name.startswith(".") and not f.name.endswith((".tmp", ".part"))
                              for f in p.rglob("*")):
            return p
    return None
