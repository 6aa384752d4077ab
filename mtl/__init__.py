"""mtl: a production pipeline for multi-task learning in e-commerce.

Importing this package has no side effects (no torch, no MLflow, no disk access): Airflow parses
the DAG files that import it constantly.
"""

__version__ = "0.1.0"
