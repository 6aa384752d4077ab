"""What a registered model is at serving time: the MLflow pyfunc package, batch and daily scoring."""
