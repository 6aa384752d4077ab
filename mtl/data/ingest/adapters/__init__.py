"""Dataset adapters: how the files of a known layout become the canonical raw log.

Selected by ``data.source`` through the ``ADAPTERS`` registry of mtl/names.py (one small module
per adapter, see base.py for the interface). Importing this package is cheap: an adapter's
module is imported when it is asked for, and pyarrow only when it reads.
"""

from mtl.data.ingest.adapters.base import Adapter, Reading, SourceError
from mtl.names import ADAPTERS
from mtl.registry import resolve


def get_adapter(name: str) -> Adapter:
    """A fresh adapter by registry name; SourceError listing the known names otherwise."""
    if name not in ADAPTERS:
        raise SourceError(f"data.source: no adapter named {name!r}; known: {sorted(ADAPTERS)}")
    return resolve(ADAPTERS, name)()


__all__ = ["ADAPTERS", "Adapter", "Reading", "SourceError", "get_adapter"]
