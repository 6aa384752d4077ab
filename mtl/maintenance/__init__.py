"""Retention: `mtl gc` and what it keeps (mtl/maintenance/gc.py)."""
