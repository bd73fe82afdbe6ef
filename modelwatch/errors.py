"""The exceptions modelwatch raises on purpose; anything else is a bug."""


class ModelwatchError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ConfigError(ModelwatchError):
    """params.yaml (or a CLI parameter) is missing, malformed or out of range."""


class SchemaError(ModelwatchError):
    """A data file cannot be read, or its columns / dtypes / ids are not what the config says."""


class BatchRejected(ModelwatchError):
    """A batch failed validation; it was quarantined and nothing was trained or scored on it."""


class InsufficientDataError(ModelwatchError):
    """Too little data to compute a statistic, train or compare models."""


class RegistryError(ModelwatchError):
    """The MLflow model registry is not in the state an operation needs."""


class ModelIntegrityError(RegistryError):
    """A model failed verification (changed files, pickle, a type outside the allow-list): it
    is neither loaded nor saved."""


class EntryPointError(ConfigError):
    """training.entry_point cannot be imported, does not take its settings, raised while
    fitting, or returned something that is not a fitted estimator."""


class VersioningError(ModelwatchError):
    """The git+DVC data repository failed or is not in the expected state."""


class PromotionRejected(ModelwatchError):
    """The promotion policy refused a model where one is required (e.g. the first model)."""


class StoreUnavailable(ModelwatchError):
    """A store server (MLflow tracking server, ledger database) did not answer after retries."""
