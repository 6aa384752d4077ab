"""Content hashes of files, streamed: what the ingest records of the user's files (to tell when
they changed) and what the retraining DAG compares between runs. Standard library only: the
DAG files import it while the scheduler parses them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path


def files_md5(files: Iterable[Path], name: Callable[[Path], bytes]) -> str:
    """md5 over each file's ``name(file)`` then its bytes, in the order given."""
    h = hashlib.md5()
    for f in files:
        h.update(name(f))
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
