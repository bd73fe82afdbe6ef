"""The types a saved model may hold: modelwatch's allow-list for skops (pure).

skops refuses to load any type it is not told to trust; MLflow reads that list from the model's
own MLmodel file, so whoever can write the file can widen it. modelwatch passes its own list
instead (stores.integrity), and refuses to save a model that needs more (ModelIntegrityError).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelwatch.errors import ModelIntegrityError

# What skops must be told to trust in the pipelines modelwatch builds (training.fit, every
# built-in model, both tasks): found with skops.io.get_untrusted_types on each, and kept equal
# to that by a test. functools.partial and check_array are how scikit-learn's
# HistGradientBoosting stores its input check; a partial is harmless unless the function it wraps
# is trusted too, and every function a file names is checked against this same list.
ALLOWED_TYPES: tuple[str, ...] = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
)


def trusted_types(extra: Iterable[str] = ()) -> list[str]:
    """The allow-list: ALLOWED_TYPES and the project's training.trusted_types."""
    return sorted({*ALLOWED_TYPES, *extra})


def untrusted_types(model: Any, extra: Iterable[str] = ()) -> list[str]:
    """The types in a fitted model that skops would need trusted and the allow-list lacks."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    allowed = set(trusted_types(extra))
    return sorted(t for t in found if t not in allowed)


def needed_types(model: Any) -> list[str]:
    """Every non-default type skops finds in a fitted model (what its MLmodel will list)."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def check_saveable(model: Any, extra: Iterable[str] = ()) -> None:
    """Raises ModelIntegrityError when a model holds a type outside the allow-list."""
    outside = untrusted_types(model, extra)
    if outside:
        raise ModelIntegrityError(
            f"the model holds types outside modelwatch's allow-list: {', '.join(outside)}; "
            "add them to training.trusted_types if you trust the code that builds the model"
        )
