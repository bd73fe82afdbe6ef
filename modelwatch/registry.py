"""MLflow model registry adapter: aliases champion, challenger and previous_champion."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from modelwatch.errors import RegistryError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"


@dataclass(frozen=True)
class ModelVersionInfo:
    version: str
    tags: dict[str, str]
    run_id: str | None


def get_alias(client: Any, name: str, alias: str) -> ModelVersionInfo | None:
    """Returns the version an alias points to, or None if the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return ModelVersionInfo(str(mv.version), dict(mv.tags), mv.run_id)


def require_alias(client: Any, name: str, alias: str) -> ModelVersionInfo:
    """Returns the version behind an alias.

    Raises:
        RegistryError: the model or the alias does not exist.
    """
    info = get_alias(client, name, alias)
    if info is None:
        raise RegistryError(f"model {name!r} has no {alias!r} alias (run `modelwatch bootstrap`)")
    return info


def aliases(client: Any, name: str) -> dict[str, str]:
    """Returns alias -> version for a registered model ({} when it is not registered)."""
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except MlflowException:
        return {}


def tag_version(client: Any, name: str, version: str, tags: dict[str, object]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def set_challenger(client: Any, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHALLENGER, version)


def promote(client: Any, name: str, version: str) -> str | None:
    """Makes `version` the champion and keeps the outgoing one as previous_champion.

    previous_champion is moved first: a crash in between leaves the old champion in place.

    Returns:
        The outgoing champion version, if there was one.
    """
    old = get_alias(client, name, CHAMPION)
    if old is not None and old.version != version:
        client.set_registered_model_alias(name, PREVIOUS, old.version)
    client.set_registered_model_alias(name, CHAMPION, version)
    log.info("model %s: champion %s -> %s", name, old.version if old else None, version)
    return old.version if old else None


def load_model(name: str, alias: str) -> Any:
    """Loads the scikit-learn pipeline behind an alias from the registry.

    Raises:
        RegistryError: the alias does not exist or the model cannot be loaded.
    """
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    except MlflowException as exc:
        raise RegistryError(f"models:/{name}@{alias} cannot be loaded: {exc}") from exc
