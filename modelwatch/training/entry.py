"""Training entry points: the function that turns a training window into a fitted model.

`training.entry_point: "package.module:function"` names one; without it the built-in model
`training.model` is used, itself an entry point of the same kind (modelwatch.training.builtin).

The contract (README, Bring your own model):

    def train(window: pd.DataFrame, *, seed: int, **settings) -> estimator

`window` holds the id, timestamp, features and target columns of the labelled rows. Of the
keyword arguments below, the function receives those it declares by name: `target`,
`features`, `categorical` (column names), `task` ("regression" or "classification"), `data`
(modelwatch.settings.DataSettings), `seed`; and every key of `training.hyperparameters` (a key
it neither declares nor takes with **kwargs is an EntryPointError). It returns a fitted
scikit-learn-compatible estimator: `predict(frame[features])`, and for classification
`predict_proba` and `classes_`. modelwatch calls it for the final model and for each validation
fit, so it must not read anything but its arguments.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from modelwatch.errors import ConfigError, EntryPointError
from modelwatch.settings import DataSettings, TrainingSettings

BUILTIN = "modelwatch.training.builtin"
SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
Trainer = Callable[[pd.DataFrame], Any]


def spec_of(training: TrainingSettings, adopted: bool = False) -> str | None:
    """The entry point that trains challengers: training.entry_point, else the built-in
    training.model; None when there is none (training.model "none", or an adopted champion
    whose params name neither an entry point nor a model: monitoring only)."""
    if training.entry_point:
        return training.entry_point
    if training.model == "none" or (adopted and "model" not in training.model_fields_set):
        return None
    return f"{BUILTIN}:{training.model}"


def module_file(spec: str, search_path: Path | None = None) -> Path | None:
    """The source file of an entry point's module (a dependency of the DVC train stage), or
    None for a built-in or a module without a file."""
    module = spec.partition(":")[0]
    if module == BUILTIN:
        return None
    with _on_path(search_path):
        found = importlib.util.find_spec(module)
    origin = getattr(found, "origin", None)
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def load(spec: str, search_path: Path | None = None) -> Callable[..., Any]:
    """Imports an entry point.

    Raises:
        EntryPointError: the spec is malformed, the module cannot be imported or has no such
            function (one line naming the entry point).
    """
    if not SPEC.match(spec):
        raise EntryPointError(f"training.entry_point {spec!r}: expected 'package.module:function'")
    module_name, _, name = spec.partition(":")
    try:
        with _on_path(search_path):
            module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise EntryPointError(
            f"training.entry_point {spec}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise EntryPointError(f"training.entry_point {spec}: {module_name} has no function {name}")
    return fn


def make_trainer(
    spec: str, data: DataSettings, training: TrainingSettings, task: str, search_path: Path | None
) -> Trainer:
    """Returns window -> fitted estimator, calling the entry point with the arguments it
    declares and checking what it returns.

    Raises:
        EntryPointError: see load; a hyperparameter the function does not take.
    """
    fn = load(spec, search_path)
    offered: dict[str, Any] = {
        "target": data.target,
        "features": list(data.features),
        "categorical": list(data.categorical),
        "task": task,
        "data": data,
        "seed": training.seed,
    }
    params = inspect.signature(fn).parameters
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if k in params}
    for key, value in training.hyperparameters.items():
        if not open_kwargs and key not in params:
            raise EntryPointError(
                f"training.entry_point {spec}: training.hyperparameters.{key} is not an argument "
                f"of {fn.__name__} (it takes: {', '.join(params)})"
            )
        kwargs[key] = value

    def trainer(window: pd.DataFrame) -> Any:
        try:
            model = fn(window.copy(), **kwargs)
        except (ConfigError, EntryPointError):
            raise
        except Exception as exc:
            raise EntryPointError(
                f"training.entry_point {spec}: the fit raised {type(exc).__name__}: {exc}"
            ) from None
        _check_model(spec, model, task)
        return model

    return trainer


def _check_model(spec: str, model: Any, task: str) -> None:
    needed = ["predict"] + (["predict_proba", "classes_"] if task == "classification" else [])
    missing = [a for a in needed if not hasattr(model, a)]
    if missing:
        raise EntryPointError(
            f"training.entry_point {spec}: returned {type(model).__name__}, not a fitted "
            f"estimator ({', '.join(missing)} missing)"
        )


class _on_path:
    """sys.path with a folder first from an import on (it stays: an entry point may import its
    own helper modules when it is called)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = str(folder) if folder else None

    def __enter__(self) -> None:
        if self.folder and self.folder not in sys.path:
            sys.path.insert(0, self.folder)

    def __exit__(self, *exc: object) -> None:
        return None
