"""The estimator registry: `register`, `available`, `check_params`, `estimate`.

An estimator is a function `fn(batch: StepBatch, *, param=default, ...) -> array` that
returns one advantage per step row, in the batch's row order. Register it under a name:

    @credit.register("my_estimator")
    def advantages(batch, *, gamma=0.9):
        return credit.step_returns(batch, gamma)

and call it as `credit.estimate("my_estimator", batch, gamma=0.8)`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from .batch import StepBatch

Estimator = Callable[..., np.ndarray]

_ESTIMATORS: dict[str, Estimator] = {}
_PARAMETERS: dict[str, tuple[frozenset, bool]] = {}  # name -> (keyword names, accepts **kwargs)


def register(name: str) -> Callable[[Estimator], Estimator]:
    """Decorator that registers an estimator under `name` (must be new)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"estimator name must be a non-empty string, got {name!r}")

    def decorator(fn: Estimator) -> Estimator:
        if name in _ESTIMATORS:
            existing = _ESTIMATORS[name]
            raise ValueError(f"credit estimator {name!r} is already registered "
                             f"({existing.__module__}.{existing.__qualname__}); pick another name")
        parameters = list(inspect.signature(fn).parameters.values())
        if not parameters or parameters[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                                        inspect.Parameter.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"estimator {name!r}: the first parameter must be the StepBatch")
        keywords = frozenset(p.name for p in parameters[1:]
                             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        _ESTIMATORS[name] = fn
        _PARAMETERS[name] = (keywords, accepts_any)
        return fn

    return decorator


def available() -> list[str]:
    """Names of the registered estimators, sorted."""
    return sorted(_ESTIMATORS)


def check_params(name: str, params: dict) -> None:
    """Raise if `name` is not registered or `params` has a key the estimator does not accept.

    What `estimate` checks before it runs; configs call it to fail before any work starts.
    """
    if name not in _ESTIMATORS:
        raise ValueError(f"unknown credit estimator {name!r}; available: {', '.join(available())}")
    keywords, accepts_any = _PARAMETERS[name]
    unknown = sorted(set(params) - keywords)
    if unknown and not accepts_any:
        accepted = ", ".join(sorted(keywords)) or "no parameters"
        raise TypeError(f"estimator {name!r} got unknown parameter {unknown[0]!r}; it accepts: {accepted}")


def estimate(name: str, batch: StepBatch, **params) -> np.ndarray:
    """One float64 advantage per step row of `batch`, in the batch's row order."""
    check_params(name, params)
    if not isinstance(batch, StepBatch):
        raise TypeError(f"estimate({name!r}, ...) needs a credit.StepBatch, got {type(batch).__name__}")
    advantages = np.asarray(_ESTIMATORS[name](batch, **params), dtype=np.float64)
    if advantages.shape != (len(batch),):
        raise ValueError(f"estimator {name!r} returned shape {advantages.shape}; expected ({len(batch)},), "
                         "one advantage per step row")
    finite = np.isfinite(advantages)
    if not np.all(finite):
        row = int(np.flatnonzero(~finite)[0])
        raise FloatingPointError(f"estimator {name!r} returned {advantages[row]} at row {row}")
    return advantages
