"""The MLflow pyfunc flavour of a trained model, logged as "models from code" (no pickle).

MLflow executes this file when the model is loaded; the fitted transform and the weights travel
as artifacts, so `models:/<name>@champion` scores raw rows anywhere `mtl` is importable.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class MultiTaskModel(PythonModel):
    def load_context(self, context):
        from mtl.scoring import Scorer

        self.scorer = Scorer.load(context.artifacts["transform"], context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.scorer.predict(model_input)


mlflow.models.set_model(MultiTaskModel())
