"""The estimator registry: `register`, `spec`, `available`, `check_params`, `estimate`.

An estimator is a function `fn(batch: StepBatch, *, param=default, ...) -> array` that
returns one advantage per step row, in the batch's row order. Register it under a name,
with what it needs and does (its :class:`EstimatorSpec`):

    @credit.register("my_estimator", needs=("value",), head="value", drop_threshold=0.01)
    def advantages(batch, *, gamma=0.9):
        return credit.step_returns(batch, gamma) - batch.value

and call it as `credit.estimate("my_estimator", batch, gamma=0.8)`. The trainer reads
the spec (which head to fit, which anchors to give, which rows to drop, which
diagnostics to log) and never branches on an estimator's name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .batch import StepBatch

Estimator = Callable[..., np.ndarray]
Diagnostics = Callable[..., dict]
Details = Callable[..., dict]

FIELDS = ("progress", "value", "next_anchor", "success")  # optional StepBatch fields an estimator may need
ROW_FIELDS = ("next_anchor", "success")  # filled from the agent's rows (StepBatch.from_rows) for every estimator
HEADS = ("progress", "value")  # head kinds; a head fills the StepBatch field of its name


@dataclass(frozen=True)
class EstimatorSpec:
    """What an estimator needs and does; the trainer reads this instead of the estimator's name.

    Attributes:
        name: the registered name.
        fn: ``fn(batch, **params) -> one advantage per row``.
        needs: optional StepBatch fields that must be filled: ``"progress"``, ``"value"``
            (a head fills them), ``"next_anchor"``, ``"success"`` (the rows carry them).
        head: a head the trainer fits on the policy to fill a field: ``"progress"``
            (fitted on the iteration's episodes, then predicts ĉ_t; SPA) or ``"value"``
            (predicts V(s_t), then regresses on the returns advantages + values; GAE);
            None for none.
        text_anchors: whether the estimator compares anchor *text* rather than integer
            state keys; a bool, or ``fn(params) -> bool`` when a parameter decides it.
        drop_threshold: rows with |A| below this are left out of the update by default
            (LOOP); None keeps every row. ``credit.drop_threshold`` in a config overrides it.
        diagnostics: ``fn(batch, advantages, **params) -> {"credit/...": number}``, the
            estimator's own diagnostics, logged beside the generic ones.
        details: ``fn(batch, **params) -> {name: array}``, the estimator's own per-step
            quantities, one value per row in the batch's row order (NaN where a quantity
            does not apply to the row); None for none. ``credit.details`` calls it.
    """

    name: str
    fn: Estimator
    needs: frozenset = frozenset()
    head: str | None = None
    text_anchors: bool | Callable[[dict], bool] = False
    drop_threshold: float | None = None
    diagnostics: Diagnostics | None = None
    details: Details | None = None

    def uses_text_anchors(self, params: dict) -> bool:
        """Whether rows should carry anchor text (not integer keys) for these parameters."""
        return bool(self.text_anchors(params) if callable(self.text_anchors) else self.text_anchors)


_ESTIMATORS: dict[str, Estimator] = {}
_SPECS: dict[str, EstimatorSpec] = {}
_PARAMETERS: dict[str, tuple[frozenset, bool]] = {}  # name -> (keyword names, accepts **kwargs)


def register(name: str, *, needs: Iterable[str] = (), head: str | None = None,
             text_anchors: bool | Callable[[dict], bool] = False, drop_threshold: float | None = None,
             diagnostics: Diagnostics | None = None,
             details: Details | None = None) -> Callable[[Estimator], Estimator]:
    """Decorator that registers an estimator under `name` (must be new), with its spec (:class:`EstimatorSpec`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"estimator name must be a non-empty string, got {name!r}")
    needs = frozenset(needs)
    if needs - set(FIELDS):
        raise ValueError(f"estimator {name!r}: needs={sorted(needs)} names unknown fields; known: {', '.join(FIELDS)}")
    if head is not None:
        if head not in HEADS:
            raise ValueError(f"estimator {name!r}: head={head!r} is not one of {', '.join(HEADS)}")
        needs = needs | {head}
    if drop_threshold is not None and not drop_threshold >= 0:
        raise ValueError(f"estimator {name!r}: drop_threshold={drop_threshold} must be >= 0")

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
        _SPECS[name] = EstimatorSpec(name, fn, needs, head, text_anchors, drop_threshold, diagnostics, details)
        _PARAMETERS[name] = (keywords, accepts_any)
        return fn

    return decorator


def unregister(name: str) -> None:
    """Remove an estimator (tests and notebooks that re-register one)."""
    for table in (_ESTIMATORS, _SPECS, _PARAMETERS):
        table.pop(name, None)


def spec(name: str) -> EstimatorSpec:
    """The :class:`EstimatorSpec` of a registered estimator."""
    if name not in _SPECS:
        raise ValueError(f"unknown credit estimator {name!r}; available: {', '.join(available())}")
    return _SPECS[name]


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


def details(name: str, batch: StepBatch, **params) -> dict[str, np.ndarray]:
    """The estimator's own per-step quantities: ``{name: one value per row}``, the batch's row order.

    What the estimator computed on the way to its advantages (GiGPO: ``A_E``, ``A_S``,
    ``step_group_size``, ...; docs/credit.md lists them per estimator), from the same
    code path, so they add up to ``estimate(name, batch, **params)`` as the estimator
    combines them. NaN marks a quantity that does not apply to a row (HGPO's level 3 at
    step 0). An estimator registered without ``details`` gives ``{}``. The parameters are
    checked as in :func:`estimate`.
    """
    check_params(name, params)
    if not isinstance(batch, StepBatch):
        raise TypeError(f"details({name!r}, ...) needs a credit.StepBatch, got {type(batch).__name__}")
    fn = _SPECS[name].details
    if fn is None:
        return {}
    out: dict[str, np.ndarray] = {}
    for key, values in fn(batch, **params).items():
        values = np.asarray(values)
        if values.dtype.kind == "b":
            values = values.astype(np.int64)
        if values.shape != (len(batch),) or values.dtype.kind not in "iuf":
            raise ValueError(f"estimator {name!r}: detail {key!r} has shape {values.shape} and dtype {values.dtype}; "
                             f"expected ({len(batch)},) numbers, one per step row")
        out[str(key)] = values
    return out
