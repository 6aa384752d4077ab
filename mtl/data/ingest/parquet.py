"""Writing a generated dataset: frames streamed into one parquet file, atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def write_frames(frames: Iterable[pd.DataFrame], path: Path) -> int:
    """Stream ``frames`` (one schema) into the parquet file ``path``; returns the row count.

    Written beside ``path`` and renamed at the end, so a killed run never leaves a half-written
    file behind. Without pandas' metadata: it names Arrow list dtypes (history columns) in a form
    pandas cannot read back, and the plain Arrow types say everything.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    writer = None
    rows = 0
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(frame)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    tmp.replace(path)
    return rows
