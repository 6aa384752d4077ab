"""The DVC side of `mtl gc`: which cache entries something still references, and the rest.

DVC's own `dvc gc` keeps what a workspace or commits reference; here the registry references
data too (every version records the DVC hashes of the outputs its run used, the mtl.dvc.* tags),
so the set of used entries is built from all of them and the cache (DVC's object database,
through dvc-data) is pruned of the rest:

- ``dvc.lock`` of the project, of every run workspace (.mtl/runs/*, ``latest`` included) and of
  the commit checked out (git HEAD), and the ``.dvc`` files the user added data with;
- the hashes of the registry versions the policy keeps (mtl.maintenance.policy.kept_data).

A directory's entry (``.dir``) brings every file it lists. Removal deletes one cache file at a
time; whatever an interruption leaves is unreferenced still, and the next gc removes it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from mtl.maintenance.plan import Item
from mtl.runstate import STATE_DIR


def _odb(home: Path):
    from dvc.repo import Repo

    return Repo(str(home)).cache.local


def _lock_hashes(text: str | None) -> set[str]:
    if not text:
        return set()
    doc = yaml.safe_load(text) or {}
    found = set()
    for stage in (doc.get("stages") or {}).values():
        for entry in (stage.get("outs") or []) + (stage.get("deps") or []):
            if entry.get("md5"):
                found.add(entry["md5"])
    for entry in doc.get("outs") or []:  # a .dvc file
        if entry.get("md5"):
            found.add(entry["md5"])
    return found


def referenced(home: Path) -> set[str]:
    """The hashes the project's lock files, run workspaces, HEAD and .dvc files reference."""
    texts = [p.read_text() for p in [home / "dvc.lock", *sorted((home / STATE_DIR / "runs").glob("*/dvc.lock"))]
             if p.is_file()]
    texts += [p.read_text() for p in home.rglob("*.dvc")
              if p.is_file() and not p.relative_to(home).parts[0] in (".dvc", STATE_DIR, ".git")]
    head = subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=home, capture_output=True, text=True)
    if head.returncode == 0:
        texts.append(head.stdout)
    return set().union(*(_lock_hashes(t) for t in texts)) if texts else set()


def _expand(odb, roots: Iterable[str]) -> set[str]:
    """``roots`` and, for a directory, every file it lists (when its entry is in the cache)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    used = set()
    for h in roots:
        used.add(h)
        if h.endswith(".dir") and odb.exists(h):
            used.update(hi.value for _, _, hi in Tree.load(odb, HashInfo(odb.hash_name, h)))
    return used


def plan(home: Path, kept: set[str]) -> list[Item]:
    """Every cache entry neither the project nor a kept version references, directory listings
    first (the order of `dvc gc`)."""
    cache = Path(home) / ".dvc" / "cache"
    if not cache.is_dir():
        return []
    odb = _odb(home)
    used = _expand(odb, referenced(Path(home)) | kept)
    unused = sorted((h for h in odb.all() if h not in used), key=lambda h: (not h.endswith(".dir"), h))
    items = []
    for h in unused:
        path = Path(odb.oid_to_path(h))
        size = path.stat().st_size if path.is_file() else 0
        items.append(Item("dvc", "remove_path", (str(path),), size,
                          f"cache {'directory listing' if h.endswith('.dir') else 'file'} {h}"))
    return items


def verify(home: Path, hashes: Iterable[str], rehash: bool = False) -> tuple[int, list[str]]:
    """(files checked, problems) for the DVC hashes a version records: each entry, and every file
    a directory lists, must be in the cache; with ``rehash`` also hold the content its hash says."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    odb, checked, problems = _odb(Path(home)), 0, []
    for root in hashes:
        todo = [root]
        if root.endswith(".dir"):
            if not odb.exists(root):
                problems.append(f"{root}: its directory listing is not in the DVC cache")
                continue
            todo += [hi.value for _, _, hi in Tree.load(odb, HashInfo(odb.hash_name, root))]
        for h in todo:
            checked += 1
            if not odb.exists(h):
                problems.append(f"{h}: not in the DVC cache")
            elif rehash:
                try:
                    odb.check(h, check_hash=True)
                except Exception as err:  # dvc-data's own kinds of a corrupted entry
                    problems.append(f"{h}: content does not match its hash ({type(err).__name__})")
    return checked, problems


def file_in(home: Path, dir_hash: str, relpath: str) -> Path | None:
    """The cache file holding ``relpath`` of a directory DVC recorded as ``dir_hash``."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    odb = _odb(Path(home))
    if not odb.exists(dir_hash):
        return None
    for key, _, hi in Tree.load(odb, HashInfo(odb.hash_name, dir_hash)):
        if "/".join(key) == relpath:
            path = Path(odb.oid_to_path(hi.value))
            return path if path.is_file() else None
    return None
