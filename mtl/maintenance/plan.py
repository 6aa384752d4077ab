"""What `mtl gc` removes, as data: one Item per thing, with its store, the action that removes it,
its size and a line for people. `mtl gc --dry-run` prints the plan; `mtl gc` prints the same plan
and carries it out item by item, so the report is what was removed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mtl.maintenance.policy import DAY


@dataclass(frozen=True)
class Item:
    store: str  # mlflow | dvc | quarantine | scores | workspaces | airflow
    action: str  # a key of mtl.maintenance.gc.ACTIONS
    args: tuple
    bytes: int | None  # None: not known here (a remote artifact store, database rows)
    what: str


def folder_bytes(path: Path | None) -> int:
    """Bytes of a file or of every file under a folder (0 when it is not there)."""
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def describe_age(created: float, now: float) -> str:
    days = (now - created) / DAY
    return f"{days:.0f} days old" if days >= 1 else f"{days * 24:.1f} hours old"


def human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def report(items: list[Item], dry_run: bool, verbose: bool = False) -> str:
    """The plan per store: how many things and how much space; every item with ``verbose``."""
    stores = ("mlflow", "dvc", "quarantine", "scores", "workspaces", "airflow")
    verb = "would remove" if dry_run else "removed"
    lines = [f"{'store':<12}{'items':>7}{'space':>12}"]
    for store in stores:
        mine = [i for i in items if i.store == store]
        known = sum(i.bytes or 0 for i in mine)
        lines.append(f"{store:<12}{len(mine):>7}{human(known):>12}"
                     + (" (+ what a remote store holds)" if any(i.bytes is None for i in mine) else ""))
        if verbose:
            lines += [f"  {i.what}" + (f"  {human(i.bytes)}" if i.bytes else "") for i in mine]
    total = sum(i.bytes or 0 for i in items)
    lines.append(f"gc: {verb} {len(items)} items, {human(total)}" + (" (dry run: nothing was deleted)" if dry_run else ""))
    return "\n".join(lines)


def remove_path(path: str) -> None:
    """A file, or a folder (renamed aside first, so a half-removed folder never looks whole)."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        import shutil

        doomed = p.with_name(f".gc-{p.name}")
        if not doomed.exists():
            os.replace(p, doomed)
        shutil.rmtree(doomed)
    elif p.exists() or p.is_symlink():
        p.unlink()
