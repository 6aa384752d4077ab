"""Training-ready columnar shards: fixed-size groups of rows as memory-mappable .npy files.

Layout of one split: ``<split>/shards.json`` (row counts) and ``<split>/part-00000/{cat,num,
labels,mask,seq,text}.npy``. The trainer opens shards with ``mmap_mode="r"`` and holds only a few in
memory at a time, so the data can be far larger than RAM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl.data.features import Arrays

FIELDS = Arrays.FIELDS
MANIFEST = "shards.json"


class ShardWriter:
    """Buffers arrays and writes a shard each time ``shard_rows`` rows have accumulated."""

    def __init__(self, directory: Path, shard_rows: int):
        self.directory = directory
        self.shard_rows = shard_rows
        self.pending: list[Arrays] = []
        self.pending_rows = 0
        self.parts: list[dict] = []
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, arrays: Arrays) -> None:
        if len(arrays):
            self.pending.append(arrays)
            self.pending_rows += len(arrays)
        while self.pending_rows >= self.shard_rows:
            self._flush(self.shard_rows)

    def _flush(self, rows: int) -> None:
        merged = self.pending[0] if len(self.pending) == 1 else Arrays.concat(self.pending)
        name = f"part-{len(self.parts):05d}"
        part = self.directory / name
        part.mkdir()
        for f in FIELDS:
            np.save(part / f"{f}.npy", getattr(merged, f)[:rows])
        self.parts.append({"path": name, "rows": rows})
        rest = merged.take(np.arange(rows, len(merged))) if len(merged) > rows else None
        self.pending = [rest] if rest is not None else []
        self.pending_rows = len(merged) - rows

    def close(self) -> dict:
        if self.pending_rows:
            self._flush(self.pending_rows)
        manifest = {"rows": sum(p["rows"] for p in self.parts), "shards": self.parts}
        (self.directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return manifest


@dataclass(frozen=True)
class Shards:
    """The shards of one split."""

    directory: Path
    parts: tuple[tuple[str, int], ...]

    def __len__(self) -> int:
        return sum(rows for _, rows in self.parts)

    @property
    def n_shards(self) -> int:
        return len(self.parts)

    def load(self, i: int, mmap: bool = True) -> Arrays:
        part = self.directory / self.parts[i][0]
        # Shards written before histories and texts existed have no seq / text files.
        return Arrays(*(np.load(part / f"{f}.npy", mmap_mode="r" if mmap else None)
                        if (part / f"{f}.npy").is_file() else None for f in FIELDS))

    def __iter__(self) -> Iterator[Arrays]:
        for i in range(self.n_shards):
            yield self.load(i)

    def all(self) -> Arrays:
        """Every row in memory (validation and test splits, tests)."""
        parts = [self.load(i, mmap=False) for i in range(self.n_shards)]
        return parts[0] if len(parts) == 1 else Arrays.concat(parts)


def open_split(directory: Path) -> Shards:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} is missing: run `mtl preprocess` (or `dvc repro`) first")
    payload = json.loads(manifest.read_text())
    return Shards(directory, tuple((p["path"], int(p["rows"])) for p in payload["shards"]))
