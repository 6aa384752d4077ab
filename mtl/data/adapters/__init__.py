"""Dataset adapters: how the files of a known layout become the canonical raw log.

Selected by ``data.source`` through the ``ADAPTERS`` registry (one small module per adapter,
see base.py for the interface). Importing this package is cheap: modules hold classes, and
pyarrow is imported only when an adapter reads.
"""

from mtl.data.adapters.base import ADAPTERS, Adapter, Reading, SourceError, register
from mtl.data.adapters import ali_ccp, aliexpress, census_income, files, synthetic  # noqa: F401  (register)


def get_adapter(name: str) -> Adapter:
    """A fresh adapter by registry name; SourceError listing the known names otherwise."""
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise SourceError(f"data.source: no adapter named {name!r}; known: {sorted(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "Adapter", "Reading", "SourceError", "get_adapter", "register"]
