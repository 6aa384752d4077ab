"""The MLflow Model Registry side of promotion: the only code that moves model aliases."""

from __future__ import annotations

CHAMPION = "champion"
PREVIOUS = "previous_champion"


def get_champion(name: str):
    """The ModelVersion holding the champion alias, or None when there is none yet."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(err).lower():
            return None
        raise


def register_and_promote(name: str, model_uri: str, tags: dict[str, str]):
    """Register the candidate as a new version, then move the aliases. Returns the new version.

    The alias move is the last step: if anything before it fails, the champion is untouched.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    previous = get_champion(name)
    version = mlflow.register_model(model_uri, name, tags=tags)
    if previous is not None:
        client.set_registered_model_alias(name, PREVIOUS, previous.version)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return version
