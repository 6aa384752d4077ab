"""The pipeline stages, one module per stage, each exposing ``run(cfg, paths)`` (``evaluate_task``
also takes the task's name): the I/O shell around the pure functions of mtl.data, mtl.training,
mtl.evaluation and mtl.promotion. A stage reads only what earlier stages wrote (mtl/paths.py)
and is declared once in mtl/stagelist.py, from which the CLI, the Airflow DAG and dvc.yaml come.

Nothing is imported here: a stage's DVC code dependencies are computed from its imports
(mtl/codedeps.py), so an edit to one stage's module reruns that stage alone.
"""
