"""``CreditConfig``: which estimator a run uses and with what parameters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CreditConfig"]


class CreditConfig(BaseModel):
    """Credit assignment of a run (docs/algorithms.md)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    estimator: str = "gigpo"
    """One of ``credit.available()``: grpo, rloo, loop, gigpo, hgpo, graphgpo, pgpo, gagpo, proxmo, spa, gae (or a registered one)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword parameters of the estimator (e.g. gamma, step_weight, normalize for gigpo)."""
    drop_threshold: float | None = Field(default=None, ge=0)
    """Drop rows with |A| below this from the update; None = the estimator's default (0.01 for loop, else off)."""

    @model_validator(mode="after")
    def _known_estimator_and_params(self) -> "CreditConfig":
        from steprl.credit.registry import check_params

        try:
            check_params(self.estimator, self.params)
        except TypeError as exc:  # pydantic reports ValueErrors with the field name
            raise ValueError(str(exc)) from None
        from steprl.credit.registry import ROW_FIELDS

        spec = self.spec
        unfilled = sorted(spec.needs - set(ROW_FIELDS) - ({spec.head} if spec.head else set()))
        if unfilled:
            raise ValueError(f"estimator {self.estimator!r} needs the step rows' {', '.join(unfilled)}, which only a "
                             "head fills in training: register it with head=...")
        return self

    @property
    def spec(self):
        """The estimator's :class:`credit.EstimatorSpec` (what it needs and does)."""
        from steprl.credit.registry import spec

        return spec(self.estimator)

    @property
    def text_anchors(self) -> bool:
        """Whether the estimator compares anchor *text* (e.g. GiGPO's similarity mode) rather than state keys."""
        return self.spec.uses_text_anchors(self.params)

    @property
    def effective_drop_threshold(self) -> float | None:
        """``drop_threshold`` if set, else the estimator's own default (None: keep every row)."""
        return self.drop_threshold if self.drop_threshold is not None else self.spec.drop_threshold
